-- The record store for throughput (issue 17), part two: the audit trail is written per
-- transition of a chunk, not per record. A step that moves 100 records from one state to
-- another appends one row naming the 100 record ids, with per-record reasons and details only
-- when some record has any (arrays parallel to the ids). It stays append-only and exact:
-- `record_events` is now a view with one row per record and transition, as before, so every
-- reader (and every test) sees what it saw; "the history of record X" is one indexed query
-- (`record_events_of(X)`, through the GIN index on the ids).

CREATE TABLE audit_chunks (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    from_state   text,
    to_state     text        NOT NULL,
    record_ids   bigint[]    NOT NULL
                             CHECK (cardinality(record_ids) BETWEEN 1 AND 999999),
    -- per record, parallel to record_ids; NULL when no record of the chunk has any
    reasons      jsonb[]     CHECK (cardinality(reasons) = cardinality(record_ids)),
    details      jsonb[]     CHECK (cardinality(details) = cardinality(record_ids)),
    actor_person text,
    actor_token  text,
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_chunks_records ON audit_chunks USING gin (record_ids);
-- The records disbursed on a statement's day (reconciliation).
CREATE INDEX audit_chunks_disbursed_at ON audit_chunks (at) WHERE to_state = 'disbursed';
CREATE TRIGGER audit_chunks_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_chunks
    FOR EACH STATEMENT EXECUTE FUNCTION append_only();

-- What was written before: one chunk per audit row, in order.
INSERT INTO audit_chunks (from_state, to_state, record_ids, reasons, details, actor_person,
                          actor_token, at)
SELECT from_state, to_state, ARRAY[record_id],
       CASE WHEN reasons = '[]' THEN NULL ELSE ARRAY[reasons] END,
       CASE WHEN detail IS NULL THEN NULL ELSE ARRAY[detail] END,
       actor_person, actor_token, at
FROM record_events ORDER BY id;
DROP TABLE record_events;
DROP FUNCTION record_events_append_only();

-- One row per record and transition. `id` orders a record's events as the old table's id did
-- (chunk, then the record's place in it).
CREATE VIEW record_events AS
    SELECT a.id * 1000000 + u.ord AS id, a.id AS chunk_id, u.record_id, a.from_state,
           a.to_state, coalesce(u.reasons, '[]'::jsonb) AS reasons, u.detail, a.at,
           a.actor_person, a.actor_token
    FROM audit_chunks a
    CROSS JOIN LATERAL unnest(a.record_ids, a.reasons, a.details) WITH ORDINALITY
        AS u(record_id, reasons, detail, ord);

-- The events of one record, through the index.
CREATE FUNCTION record_events_of(rid bigint) RETURNS SETOF record_events
LANGUAGE sql STABLE AS $$
    SELECT a.id * 1000000 + u.ord, a.id, u.record_id, a.from_state, a.to_state,
           coalesce(u.reasons, '[]'::jsonb), u.detail, a.at, a.actor_person, a.actor_token
    FROM audit_chunks a
    CROSS JOIN LATERAL unnest(a.record_ids, a.reasons, a.details) WITH ORDINALITY
        AS u(record_id, reasons, detail, ord)
    WHERE a.record_ids @> ARRAY[rid] AND u.record_id = rid
$$;
