-- Bank statements reconciled line by line, and returned funds (issue 14). See the README's
-- "Reconciliation" section and src/ops/reconcile.rs.

-- A disbursed record whose money came back (account closed, recipient deceased, not
-- collected) is `returned`; it may be corrected and paid again.
ALTER TABLE records DROP CONSTRAINT records_state_check;
ALTER TABLE records ADD CONSTRAINT records_state_check CHECK (state IN (
    'received', 'account_requested', 'account_opened', 'awaiting_approval', 'verified',
    'transfer_requested', 'disbursed', 'returned', 'blocked', 'rejected', 'failed', 'dead'));

-- Which payment of the record the next transfer is: 0 for the first; one more after each
-- return, so that paying a returned record again carries a new idempotency key (the bank
-- answers an old key with its old answer and would never pay again).
ALTER TABLE records ADD COLUMN payment_no integer NOT NULL DEFAULT 0;

-- Finding the transfer a statement line names, by its idempotency key, and the transfer
-- request of a record.
CREATE INDEX bank_requests_keys ON bank_requests USING gin (keys);
CREATE INDEX bank_requests_records ON bank_requests USING gin (record_ids);
-- The records disbursed on a statement's day.
CREATE INDEX record_events_disbursed_at ON record_events (at) WHERE to_state = 'disbursed';

-- One row per statement reconciled: a bank's statement is reconciled once (its reference
-- `:20:` per bank); the same file again changes nothing.
CREATE TABLE reconciliations (
    id              uuid          PRIMARY KEY,
    bank_code       text          NOT NULL,
    statement_ref   text          NOT NULL,
    account         text          NOT NULL,
    statement_date  date          NOT NULL,
    format          text          NOT NULL CHECK (format IN ('mt940', 'csv')),
    file_name       text          NOT NULL,
    -- SHA-256 of the file, lower-case hex: another file under the same reference is refused
    file_sha256     text          NOT NULL CHECK (file_sha256 ~ '^[0-9a-f]{64}$'),
    opening         numeric(18,2) NOT NULL,
    closing         numeric(18,2) NOT NULL,
    debit_count     integer       NOT NULL,
    debit_total     numeric(18,2) NOT NULL,
    credit_count    integer       NOT NULL,
    credit_total    numeric(18,2) NOT NULL,
    matched         integer       NOT NULL,
    returned        integer       NOT NULL,
    returned_total  numeric(18,2) NOT NULL,
    person          text,
    token_label     text,
    at              timestamptz   NOT NULL DEFAULT now(),
    UNIQUE (bank_code, statement_ref)
);
CREATE INDEX reconciliations_date ON reconciliations (bank_code, statement_date);

-- Every line of a reconciled statement and what it was found to be.
CREATE TABLE reconciliation_lines (
    reconciliation_id uuid          NOT NULL REFERENCES reconciliations (id),
    line_no           integer       NOT NULL,
    file_line         integer       NOT NULL,
    direction         text          NOT NULL CHECK (direction IN ('debit', 'credit')),
    amount            numeric(18,2) NOT NULL,
    value_date        date          NOT NULL,
    end_to_end        text          NOT NULL,
    bank_reference    text,
    return_code       text,
    record_id         bigint        REFERENCES records (id),
    outcome           text          NOT NULL,
    PRIMARY KEY (reconciliation_id, line_no)
);

-- What did not match, one row each (kinds: see src/ops/reconcile.rs, ExceptionKind).
CREATE TABLE reconciliation_exceptions (
    id                bigint        GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reconciliation_id uuid          NOT NULL REFERENCES reconciliations (id),
    bank_code         text          NOT NULL,
    kind              text          NOT NULL CHECK (kind IN (
                          'not_disbursed', 'unknown', 'missing', 'amount_mismatch', 'duplicate')),
    line_no           integer,
    file_line         integer,
    record_id         bigint        REFERENCES records (id),
    batch_id          uuid          REFERENCES batches (id),
    amount            numeric(18,2),
    expected          numeric(18,2),
    end_to_end        text,
    detail            text          NOT NULL
);
CREATE INDEX reconciliation_exceptions_of ON reconciliation_exceptions (reconciliation_id, id);
CREATE INDEX reconciliation_exceptions_batch ON reconciliation_exceptions (batch_id)
    WHERE batch_id IS NOT NULL;
CREATE INDEX reconciliation_exceptions_record ON reconciliation_exceptions (record_id)
    WHERE record_id IS NOT NULL;

-- Funds that came back: one row per returned payment of a record (its payment number), with
-- the bank's reason and date and where salur learnt it (a statement's reconciliation).
CREATE TABLE record_returns (
    record_id         bigint        NOT NULL REFERENCES records (id),
    payment_no        integer       NOT NULL,
    batch_id          uuid          NOT NULL REFERENCES batches (id),
    program           text          NOT NULL,
    bank_code         text          NOT NULL,
    idempotency_key   text          NOT NULL,
    bank_reference    text,
    amount            numeric(18,2) NOT NULL,
    reason_code       text          NOT NULL,
    returned_on       date          NOT NULL,
    reconciliation_id uuid          REFERENCES reconciliations (id),
    at                timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (record_id, payment_no)
);
CREATE INDEX record_returns_key ON record_returns (idempotency_key);
CREATE INDEX record_returns_batch ON record_returns (batch_id);
