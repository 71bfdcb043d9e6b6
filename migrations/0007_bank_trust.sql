-- Bank answers are trusted only from the bank that was asked (issue 11).

-- Every request sent to a bank, so that an answer can be checked against it: the bank it went
-- to, its kind, the records it named and each one's idempotency key (account opening and
-- transfer; empty for an inquiry). One row per request (a chunk), written in the transaction
-- that queues the request. An answer whose request_id is not here, or that names a record the
-- request did not, changes nothing.
CREATE TABLE bank_requests (
    request_id uuid        PRIMARY KEY,
    bank_code  text        NOT NULL,
    kind       text        NOT NULL,
    record_ids bigint[]    NOT NULL,
    keys       text[]      NOT NULL,
    sent_at    timestamptz NOT NULL DEFAULT now()
);

-- The banks registered with `salur bank add`: their RabbitMQ user (the broker authenticates
-- the bank; the AMQP user_id of an answer names it) and a name for people.
CREATE TABLE banks (
    code       text        PRIMARY KEY,
    name       text        NOT NULL,
    amqp_user  text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
