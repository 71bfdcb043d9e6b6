-- Approval of payment lists before any transfer (issue 13).
--
-- A verified record of a programme that requires approval waits in `awaiting_approval`; a
-- checker approves the batch's list as it stands (its hash), or rejects it. One row per
-- decision: who, on which list, how many records and how much.
CREATE TABLE approvals (
    id           uuid          PRIMARY KEY,
    batch_id     uuid          NOT NULL REFERENCES batches (id),
    program      text          NOT NULL,
    period       text          NOT NULL,
    office       text          NOT NULL,
    -- SHA-256 of the list, lower-case hex (see the README: "The approval list and its hash")
    list_hash    text          NOT NULL CHECK (list_hash ~ '^[0-9a-f]{64}$'),
    decision     text          NOT NULL CHECK (decision IN ('approved', 'rejected')),
    why          text,
    person       text          NOT NULL CHECK (btrim(person) <> ''),
    token_label  text,
    record_count integer       NOT NULL CHECK (record_count > 0),
    total        numeric(18,2) NOT NULL CHECK (total >= 0),
    at           timestamptz   NOT NULL DEFAULT now(),
    CHECK (decision = 'approved' OR btrim(COALESCE(why, '')) <> '')
);
CREATE INDEX approvals_batch ON approvals (batch_id, at);
CREATE INDEX approvals_budget ON approvals (program, period, office);

-- A record's approval: NULL until a checker approves the list it is on; cleared whenever it
-- waits for approval again (a payee change, a replay).
ALTER TABLE records
    ADD CONSTRAINT records_approval_id_fkey FOREIGN KEY (approval_id) REFERENCES approvals (id);
CREATE INDEX records_approval ON records (approval_id) WHERE approval_id IS NOT NULL;

ALTER TABLE records DROP CONSTRAINT records_state_check;
ALTER TABLE records ADD CONSTRAINT records_state_check CHECK (state IN (
    'received', 'account_requested', 'account_opened', 'awaiting_approval', 'verified',
    'transfer_requested', 'disbursed', 'blocked', 'rejected', 'failed', 'dead'));
CREATE INDEX records_awaiting_approval ON records (batch_id, id) WHERE state = 'awaiting_approval';

-- Who submitted a batch (a checker may not approve their own submission). NULL for batches
-- submitted before people had roles.
ALTER TABLE batches ADD COLUMN submitted_person text, ADD COLUMN submitted_token text;
