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

-- Every stage changes a record's state, and `state` in an index means an index entry written
-- per change. (batch_id, state) only served lookups by batch, which the (batch_id, row_number)
-- unique index serves as well; counts by state per batch read the batch's rows either way.
DROP INDEX IF EXISTS records_batch_state;
