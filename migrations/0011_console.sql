-- The office's web console (issue 15): the people who sign in, their sessions, and the
-- failed sign-ins that slow the next attempt down.

-- A person of an office (or of an auditor) who signs in to the console with a login and a
-- password. Only an argon2id hash (PHC string) of the password is stored. `must_change`: the
-- password was printed by `salur person add` and has to be changed at the first sign-in.
CREATE TABLE people (
    login         text        PRIMARY KEY CHECK (login ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    office        text        NOT NULL REFERENCES offices (code),
    name          text        NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    role          text        NOT NULL CHECK (role IN ('maker', 'checker', 'auditor')),
    password_hash text        NOT NULL,
    must_change   boolean     NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    password_at   timestamptz NOT NULL DEFAULT now()
);

-- A signed-in browser. The cookie carries 32 random bytes; only their SHA-256 is stored.
-- `csrf` is the token every form of the session carries.
CREATE TABLE console_sessions (
    id_hash    bytea       PRIMARY KEY,
    login      text        NOT NULL REFERENCES people (login) ON DELETE CASCADE,
    csrf       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    seen_at    timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX console_sessions_login ON console_sessions (login);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

-- Failed sign-ins per login as typed (also for logins that do not exist, so that a slow answer
-- says nothing about which logins exist). Cleared by a successful sign-in.
CREATE TABLE console_signin_failures (
    login     text        PRIMARY KEY,
    failures  integer     NOT NULL,
    last_at   timestamptz NOT NULL DEFAULT now()
);
