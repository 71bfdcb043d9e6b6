-- The record store for throughput (issue 17), part one: what a batch holds is counted as it
-- changes, instead of scanned; no index on a column that changes with every step, so that a
-- step's update of a record can be HOT (no index entries written); no foreign-key check per
-- row on the hot path (intake's COPY, each step's audit rows, each claim). Referential
-- integrity of these columns is checked by the tests (store::integrity) instead.
-- See the README's "Performance" section.

ALTER TABLE records DROP CONSTRAINT IF EXISTS records_batch_id_fkey;
ALTER TABLE record_events DROP CONSTRAINT IF EXISTS record_events_record_id_fkey;
ALTER TABLE recipient_claims DROP CONSTRAINT IF EXISTS recipient_claims_record_id_fkey;

-- Each of these named `state` or `updated_at`, columns every step changes: every update wrote
-- an entry into each (and into every other index, the update not being HOT).
DROP INDEX IF EXISTS records_state_updated;
DROP INDEX IF EXISTS records_parked;
DROP INDEX IF EXISTS records_in_flight_batch;
DROP INDEX IF EXISTS records_awaiting_approval;

-- Room on each page for the next version of its rows (a HOT update stays on its page).
ALTER TABLE records SET (fillfactor = 70);

-- Records and rupiah per batch, state and whether approved, as deltas: every statement that
-- inserts, updates or deletes records appends its net change (in its own transaction, by the
-- trigger below), so concurrent steps never wait on one counter row. The sweeper folds a
-- batch's deltas into one row per state now and then (store::counts::compact).
CREATE TABLE batch_counts (
    batch_id    uuid          NOT NULL,
    state       text          NOT NULL,
    approved    boolean       NOT NULL,
    records     bigint        NOT NULL,
    amount      numeric(20,2) NOT NULL,
    last_change timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX batch_counts_batch ON batch_counts (batch_id);

-- A batch's totals by state and approval: what `batch status`, `--wait`, the gauges, budgets
-- and the API read.
CREATE VIEW batch_totals AS
    SELECT batch_id, state, approved, sum(records)::bigint AS records, sum(amount) AS amount,
           max(last_change) AS last_change
    FROM batch_counts GROUP BY batch_id, state, approved;

-- The records that stopped (blocked, dead: parked; rejected, failed: final), with the state
-- each stopped from and the reasons it stopped with: the dead-letter tooling, the gauges and a
-- batch's reason counts read these, not the records table.
CREATE TABLE stopped_records (
    record_id  bigint      PRIMARY KEY,
    batch_id   uuid        NOT NULL,
    state      text        NOT NULL CHECK (state IN ('blocked', 'dead', 'rejected', 'failed')),
    from_state text,
    reasons    jsonb       NOT NULL DEFAULT '[]',
    since      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stopped_records_batch ON stopped_records (batch_id);
CREATE INDEX stopped_records_state ON stopped_records (state, since);

CREATE FUNCTION records_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO batch_counts (batch_id, state, approved, records, amount)
        SELECT batch_id, state, approval_id IS NOT NULL, count(*), coalesce(sum(amount), 0)
        FROM new_rows GROUP BY 1, 2, 3;
        INSERT INTO stopped_records (record_id, batch_id, state, reasons)
        SELECT id, batch_id, state, reasons FROM new_rows WHERE state IN ('blocked', 'dead', 'rejected', 'failed');
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO batch_counts (batch_id, state, approved, records, amount)
        SELECT batch_id, state, approval_id IS NOT NULL, -count(*), -coalesce(sum(amount), 0)
        FROM old_rows GROUP BY 1, 2, 3;
        DELETE FROM stopped_records WHERE record_id IN (SELECT id FROM old_rows);
    ELSE
        INSERT INTO batch_counts (batch_id, state, approved, records, amount)
        SELECT batch_id, state, approved, sum(n), sum(a)
        FROM (SELECT batch_id, state, approval_id IS NOT NULL AS approved, 1 AS n,
                     coalesce(amount, 0) AS a
              FROM new_rows
              UNION ALL
              SELECT batch_id, state, approval_id IS NOT NULL, -1, -coalesce(amount, 0)
              FROM old_rows) d
        GROUP BY 1, 2, 3
        HAVING sum(n) <> 0 OR sum(a) <> 0;
        -- A record that leaves its state leaves the stopped set; one that enters a stopped
        -- state joins it (blocked to dead: both).
        DELETE FROM stopped_records p
        USING old_rows o JOIN new_rows n ON n.id = o.id
        WHERE p.record_id = o.id AND n.state <> o.state AND o.state IN ('blocked', 'dead', 'rejected', 'failed');
        INSERT INTO stopped_records (record_id, batch_id, state, from_state, reasons)
        SELECT n.id, n.batch_id, n.state, o.state, n.reasons
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE n.state <> o.state AND n.state IN ('blocked', 'dead', 'rejected', 'failed');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER records_counted_insert AFTER INSERT ON records
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION records_counted();
CREATE TRIGGER records_counted_update AFTER UPDATE ON records
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION records_counted();
CREATE TRIGGER records_counted_delete AFTER DELETE ON records
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION records_counted();

-- What is there already.
INSERT INTO batch_counts (batch_id, state, approved, records, amount, last_change)
SELECT batch_id, state, approval_id IS NOT NULL, count(*), coalesce(sum(amount), 0),
       max(updated_at)
FROM records GROUP BY 1, 2, 3;
INSERT INTO stopped_records (record_id, batch_id, state, from_state, reasons, since)
SELECT r.id, r.batch_id, r.state,
       (SELECT e.from_state FROM record_events e
        WHERE e.record_id = r.id AND e.to_state = r.state AND e.from_state <> r.state
        ORDER BY e.id DESC LIMIT 1),
       coalesce((SELECT e.reasons FROM record_events e
                 WHERE e.record_id = r.id AND e.to_state = r.state AND e.from_state <> r.state
                 ORDER BY e.id DESC LIMIT 1), r.reasons),
       r.updated_at
FROM records r WHERE r.state IN ('blocked', 'dead', 'rejected', 'failed');
