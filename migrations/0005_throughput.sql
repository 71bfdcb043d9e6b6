-- Throughput (measured with `salur bench`; see the README's Performance section).

-- The outbox no longer notifies from a trigger. A NOTIFY inside a transaction takes a
-- database-wide lock when it commits and holds it through the WAL flush, so every transaction
-- that wrote to the outbox (every stage transaction) committed one at a time: no group commit,
-- one fsync each. Measured with `salur bench`: most sessions waited on "Lock: object" in COMMIT.
-- Now a worker's relay is woken by its own stage transactions in process, writers in other
-- processes (submit) send pg_notify('salur_outbox', '') after they commit, and every relay
-- still polls once a second.
DROP TRIGGER IF EXISTS outbox_notify ON outbox;
DROP FUNCTION IF EXISTS outbox_notify();

-- Every stage changes a record's state. With `state` in an index, each change wrote a new heap
-- tuple and an entry in every index of `records` (three), and with pages packed full by COPY
-- the new version never fit on its page. Without that index, and with room left on each page,
-- a state change is a HOT update: one heap tuple on the same page, no index writes. Looking a
-- batch up still uses the (batch_id, row_number) unique index.
DROP INDEX IF EXISTS records_batch_state;
ALTER TABLE records SET (fillfactor = 60);
