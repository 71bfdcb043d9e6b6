-- Personal data at rest (UU PDP), see src/store/sealed.rs and the README's "Personal data".
--
-- The personal columns hold ciphertext: [0x01][key id u16][nonce 12][AES-256-GCM ct + tag],
-- sealed by the application with the record id and column name as associated data. Values
-- written before this migration are kept as [0x00][clear text] and sealed by `salur migrate`
-- right after it (the same pass as a key rotation).
ALTER TABLE records
    ALTER COLUMN nik TYPE bytea USING '\x00'::bytea || convert_to(nik, 'UTF8'),
    ALTER COLUMN kk TYPE bytea USING '\x00'::bytea || convert_to(kk, 'UTF8'),
    ALTER COLUMN name TYPE bytea USING '\x00'::bytea || convert_to(name, 'UTF8'),
    ALTER COLUMN mother_name TYPE bytea USING '\x00'::bytea || convert_to(mother_name, 'UTF8'),
    ALTER COLUMN birth_place TYPE bytea USING '\x00'::bytea || convert_to(birth_place, 'UTF8'),
    ALTER COLUMN birth_date TYPE bytea USING '\x00'::bytea || convert_to(birth_date, 'UTF8'),
    ALTER COLUMN address TYPE bytea USING '\x00'::bytea || convert_to(address, 'UTF8'),
    ALTER COLUMN phone TYPE bytea USING '\x00'::bytea || convert_to(phone, 'UTF8'),
    ALTER COLUMN account_number TYPE bytea USING '\x00'::bytea || convert_to(account_number, 'UTF8'),
    ALTER COLUMN bank_account TYPE bytea USING '\x00'::bytea || convert_to(bank_account, 'UTF8'),
    ALTER COLUMN bank_account_name TYPE bytea USING '\x00'::bytea || convert_to(bank_account_name, 'UTF8'),
    -- The validated NIK in clear is replaced by the keyed hash of the NIK as written
    -- (HMAC-SHA256 of its digits), set at intake and on every correction.
    DROP COLUMN nik_valid,
    ADD COLUMN nik_hash bytea,
    -- Masked forms kept when the personal fields are erased (retention, erasure request).
    ADD COLUMN masked jsonb,
    ADD COLUMN erased_at timestamptz;

-- "Find the records of this NIK" (access requests) and the corrections file's NIK column.
CREATE INDEX records_nik_hash ON records (nik_hash) WHERE nik_hash IS NOT NULL;

-- The key id of a sealed value (NULL for clear or legacy values).
CREATE FUNCTION salur_key_id(v bytea) RETURNS integer LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN get_byte(v, 0) = 1 THEN get_byte(v, 1) * 256 + get_byte(v, 2) END
$$;

-- Double-recipient claims hold the keyed hash, never the NIK. Existing claims keep their NIK
-- until `salur migrate` hashes it (then the column is dropped).
ALTER TABLE recipient_claims DROP CONSTRAINT recipient_claims_pkey;
ALTER TABLE recipient_claims
    ADD COLUMN nik_hash bytea,
    ALTER COLUMN nik DROP NOT NULL;
CREATE UNIQUE INDEX recipient_claims_hash ON recipient_claims (program, period, nik_hash);
CREATE INDEX recipient_claims_record ON recipient_claims (record_id);

-- A key check value per data key (HMAC-SHA256 of a fixed label under the key, 16 bytes): a
-- process whose key differs is refused at start-up. key_id 0 is the NIK hash key. A retired
-- key encrypts nothing any more and may be removed from the key ring.
CREATE TABLE data_keys (
    key_id      integer     PRIMARY KEY,
    check_value bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz
);

-- Retention of personal data after a batch is closed, per programme (default: the
-- SALUR_RETENTION_DAYS setting).
CREATE TABLE retention_policies (
    program    text        PRIMARY KEY,
    days       integer     NOT NULL CHECK (days > 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE batches ADD COLUMN personal_erased_at timestamptz;

-- Who read or erased a person's data (access and erasure requests, retention), and why.
CREATE TABLE personal_data_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action     text        NOT NULL CHECK (action IN ('export', 'erase', 'retention')),
    actor      text        NOT NULL,
    nik_hash   bytea,
    batch_id   uuid,
    record_ids bigint[]    NOT NULL,
    detail     jsonb,
    at         timestamptz NOT NULL DEFAULT now()
);
-- Append-only, like record_events (one function for any such table).
CREATE FUNCTION append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP;
END $$;
CREATE TRIGGER personal_data_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON personal_data_log
    FOR EACH STATEMENT EXECUTE FUNCTION append_only();
