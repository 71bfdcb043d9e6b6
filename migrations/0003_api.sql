-- HTTP API: who may call it, and the idempotency of batch submissions.

-- A principal of the API: a social-affairs office (sees and changes only its own batches) or an
-- auditor (reads everything, changes nothing). `code` is what `batches.office` holds.
CREATE TABLE offices (
    code       text        PRIMARY KEY,
    name       text        NOT NULL,
    role       text        NOT NULL CHECK (role IN ('office', 'auditor')),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Bearer tokens. Only the SHA-256 of a token is stored (tokens are 32 random bytes, so a
-- plain hash is enough); `prefix` (the first characters of the token) lets a person tell
-- tokens apart without holding them. A revoked token is kept for the record.
CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    office       text        NOT NULL REFERENCES offices (code),
    token_sha256 bytea       NOT NULL UNIQUE,
    prefix       text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_tokens_office ON api_tokens (office);

-- `Idempotency-Key` of POST /v1/batches: the same key with the same body gives the same batch;
-- the same key with another body is refused. Written in the batch's own transaction.
CREATE TABLE idempotency_keys (
    office      text        NOT NULL,
    key         text        NOT NULL,
    body_sha256 bytea       NOT NULL,
    batch_id    uuid        NOT NULL REFERENCES batches (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (office, key)
);

-- Listing an office's batches, newest first.
CREATE INDEX batches_office_created ON batches (office, created_at DESC, id DESC);
