-- The outbox no longer notifies from a trigger. A NOTIFY inside a transaction takes a
-- database-wide lock when it commits and holds it through the WAL flush, so every transaction
-- that wrote to the outbox (every stage transaction) committed one at a time: no group commit,
-- one fsync each. Measured with `salur bench`: most sessions waited on "Lock: object" in COMMIT.
-- Now a worker's relay is woken by its own stage transactions in process, writers in other
-- processes (submit) send pg_notify('salur_outbox', '') after they commit, and every relay
-- still polls once a second.
DROP TRIGGER IF EXISTS outbox_notify ON outbox;
DROP FUNCTION IF EXISTS outbox_notify();
