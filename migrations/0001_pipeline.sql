-- salur: batches of aid recipients, their records and every state change.
-- PostgreSQL is the source of truth; RabbitMQ only carries work (see outbox).

CREATE TABLE batches (
    id           uuid PRIMARY KEY,
    office       text        NOT NULL,
    program      text        NOT NULL,
    period       text        NOT NULL,
    file_name    text        NOT NULL,
    record_count integer     NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per recipient. The office's values are kept as written (raw text) so that an
-- office can see and fix exactly what it sent; typed values are set once validated.
CREATE TABLE records (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id        uuid        NOT NULL REFERENCES batches (id),
    row_number      integer     NOT NULL,
    state           text        NOT NULL CHECK (state IN (
                        'received', 'account_requested', 'account_opened', 'verified',
                        'transfer_requested', 'disbursed', 'blocked', 'rejected', 'failed', 'dead')),
    -- as written by the office
    nik             text,
    kk              text,
    name            text,
    mother_name     text,
    birth_place     text,
    birth_date      text,
    sex             text,
    address         text,
    region_code     text,
    phone           text,
    bank_code       text,
    account_number  text,
    amount_raw      text,
    -- typed, set when known
    amount          numeric(18, 2),
    nik_valid       text,
    bank_account    text,
    bank_account_name text,
    bank_reference  text,
    -- why the record stopped, as [{code, field, message}]
    reasons         jsonb       NOT NULL DEFAULT '[]',
    attempts        integer     NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (batch_id, row_number)
);
CREATE INDEX records_batch_state ON records (batch_id, state);

-- Append-only audit trail: one row per state change of every record.
CREATE TABLE record_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    record_id  bigint      NOT NULL REFERENCES records (id),
    from_state text,
    to_state   text        NOT NULL,
    reasons    jsonb       NOT NULL DEFAULT '[]',
    detail     jsonb,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX record_events_record ON record_events (record_id, id);

CREATE FUNCTION record_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'record_events is append-only: % is not allowed', TG_OP;
END $$;
CREATE TRIGGER record_events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON record_events
    FOR EACH STATEMENT EXECUTE FUNCTION record_events_append_only();

-- One NIK is paid at most once per programme and period, across all batches and offices.
-- Verification claims the NIK here; a second record with the same NIK is a double recipient.
CREATE TABLE recipient_claims (
    program    text        NOT NULL,
    period     text        NOT NULL,
    nik        text        NOT NULL,
    record_id  bigint      NOT NULL REFERENCES records (id),
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (program, period, nik)
);

-- Transactional outbox: messages are written in the same transaction as the state change
-- and published by the relay with publisher confirms, then deleted.
CREATE TABLE outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    exchange    text        NOT NULL,
    routing_key text        NOT NULL,
    payload     bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('salur_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
