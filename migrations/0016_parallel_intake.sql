-- The record store for throughput (issue 17), part four: intake without row-by-row checks, its
-- two tables copied side by side.
--
-- `records.approval_id` referenced `approvals`: PostgreSQL queued a check for every row `COPY`
-- wrote (all of them NULL, so each found nothing to check). The approval flow sets the column
-- only to the approval it has just written, in the same transaction; `store::counts::integrity`
-- checks the reference after every test batch and in the fault campaign, as it does for the
-- references dropped in 0013.
ALTER TABLE records DROP CONSTRAINT IF EXISTS records_approval_id_fkey;

-- Intake copies a batch's office data (`record_data`) on a second connection, in a transaction
-- of its own, while the batch's transaction copies the moving part (`records`), the audit and
-- the messages: two PostgreSQL backends at work instead of one. The office data commits first,
-- with a row here naming each id range it wrote; the batch's transaction then deletes these
-- rows and commits. Until then the office data belongs to no record, and nothing reads
-- `record_data` but through `records`. Should the batch's commit fail (or its process die in
-- between), the ranges still listed here belong to a batch that does not exist: intake removes
-- them at once, the sweeper after a crash (`store::records::remove_abandoned_intake`). The
-- batch's transaction holds an advisory lock on its batch id from its first statement to its
-- end, so the sweeper never takes an intake in progress for abandoned.
CREATE TABLE intake_pending (
    batch_id uuid   NOT NULL,
    first_id bigint NOT NULL,
    last_id  bigint NOT NULL
);
CREATE INDEX intake_pending_batch ON intake_pending (batch_id);
