-- The sweeper (records waiting too long for a bank answer or a stage) and the dead-letter
-- tooling (parked records by state and age) find records by state and last change.
CREATE INDEX records_state_updated ON records (state, updated_at) WHERE state <> 'disbursed';
