-- The idempotency key of the account-opening request a record was last sent with (a UUIDv5 of
-- the data sent, no personal data). An account-opening answer is checked against it, so the
-- answer reads no personal field; NULL for records sent before this column (their answers
-- recompute the key from the sealed fields, as before).
ALTER TABLE records ADD COLUMN open_key text;
