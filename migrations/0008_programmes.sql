-- Programmes, budgets, people and roles (issue 13).

-- A programme is data: the amounts it pays one recipient (BPNT: 600000 a quarter; PKH: per
-- component) and whether a checker must approve a payment list before money moves. A batch
-- names its programme; a batch for a programme that is not here is refused at submit, and a
-- record whose amount is not one of `amounts` is blocked (AMOUNT_NOT_ALLOWED).
CREATE TABLE programmes (
    code              text          PRIMARY KEY,
    name              text          NOT NULL,
    amounts           numeric(18,2)[] NOT NULL CHECK (cardinality(amounts) > 0),
    approval_required boolean       NOT NULL DEFAULT true,
    created_at        timestamptz   NOT NULL DEFAULT now()
);

-- The programmes of batches stored before this migration, so that their records go on as
-- before: the amounts they hold, no approval (they were submitted without one).
INSERT INTO programmes (code, name, amounts, approval_required)
SELECT b.program, b.program, array_agg(DISTINCT r.amount ORDER BY r.amount), false
FROM batches b JOIN records r ON r.batch_id = b.id
WHERE r.amount IS NOT NULL
GROUP BY b.program
ON CONFLICT DO NOTHING;

-- The budget ceiling (pagu) of a programme for one period and one office.
CREATE TABLE budgets (
    program    text          NOT NULL REFERENCES programmes (code),
    period     text          NOT NULL,
    office     text          NOT NULL REFERENCES offices (code),
    amount     numeric(18,2) NOT NULL CHECK (amount >= 0),
    updated_at timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (program, period, office)
);

-- A token belongs to a person with a role: a maker submits, fixes and replays; a checker
-- approves or rejects payment lists; an auditor reads everything; an admin manages
-- programmes, budgets and offices. Tokens made before roles keep what their principal could
-- do: an office's become makers, an auditor's auditors. `label` is what audit rows name the
-- token by (the token's beginning unless given).
ALTER TABLE api_tokens
    ADD COLUMN role   text,
    ADD COLUMN person text,
    ADD COLUMN label  text;
UPDATE api_tokens t SET
    role = CASE WHEN o.role = 'auditor' THEN 'auditor' ELSE 'maker' END,
    label = t.prefix
FROM offices o WHERE o.code = t.office;
ALTER TABLE api_tokens
    ALTER COLUMN role SET NOT NULL,
    ADD CONSTRAINT api_tokens_role CHECK (role IN ('maker', 'checker', 'auditor', 'admin'));

-- Who caused a state change: the person and the token (its label, or `cli` for the command
-- line on the server). NULL: written by the system (a stage, the sweeper).
ALTER TABLE record_events
    ADD COLUMN actor_person text,
    ADD COLUMN actor_token  text;

-- The approval a record was paid under (NULL: not approved). Given meaning by 0009_approval.
ALTER TABLE records ADD COLUMN approval_id uuid;
