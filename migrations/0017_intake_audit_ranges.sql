-- The record store for throughput (issue 17), part five: intake's audit rows and the NIK hash
-- cheaper to index.
--
-- Intake writes one `audit_chunks` row per 10,000 records of a slice, and a slice's ids are one
-- range (`store::records::take_ids`). Putting each of those ids into the GIN index on
-- `record_ids` cost more of intake's database time than writing the records themselves; such a
-- row now also names its ids as a range, and only the GIN index's rows without a range are
-- indexed there: the others are found through a GiST index on the range. `record_ids` stays
-- as it was (every reader of the audit unnests it as before); a range, where there is one, names
-- the same ids again: the check below holds its bounds and size to the list's.
ALTER TABLE audit_chunks ADD COLUMN record_range int8range
    CHECK (record_range IS NULL
           OR (lower(record_range) = record_ids[1]
               AND upper(record_range) - lower(record_range) = cardinality(record_ids)
               AND upper(record_range) - 1 = record_ids[cardinality(record_ids)]));

-- A long id list is compressed when it is stored: lz4 instead of pglz takes a fraction of the time.
ALTER TABLE audit_chunks ALTER COLUMN record_ids SET COMPRESSION lz4;

DROP INDEX audit_chunks_records;
CREATE INDEX audit_chunks_records ON audit_chunks USING gin (record_ids)
    WHERE record_range IS NULL;
CREATE INDEX audit_chunks_ranges ON audit_chunks USING gist (record_range)
    WHERE record_range IS NOT NULL;

-- The events of one record, through either index.
CREATE OR REPLACE FUNCTION record_events_of(rid bigint) RETURNS SETOF record_events
LANGUAGE sql STABLE AS $$
    SELECT a.id * 1000000 + u.ord, a.id, u.record_id, a.from_state, a.to_state,
           coalesce(u.reasons, '[]'::jsonb), u.detail, a.at, a.actor_person, a.actor_token
    FROM (SELECT * FROM audit_chunks
          WHERE record_range IS NULL AND record_ids @> ARRAY[rid]
          UNION ALL
          SELECT * FROM audit_chunks
          WHERE record_range IS NOT NULL AND record_range @> rid) a
    CROSS JOIN LATERAL unnest(a.record_ids, a.reasons, a.details) WITH ORDINALITY
        AS u(record_id, reasons, detail, ord)
    WHERE u.record_id = rid
$$;

-- Looking a person up by NIK (access and erasure requests) is an equality on the keyed hash:
-- a hash index answers it, and an intake's random hashes go into it at a fraction of what a
-- B-tree's page splits cost.
DROP INDEX record_data_nik_hash;
CREATE INDEX record_data_nik_hash ON record_data USING hash (nik_hash)
    WHERE nik_hash IS NOT NULL;
