-- This installation's id, made once with its database. Everything the installation puts on
-- a NATS server (stream, subjects, the header on every message) is scoped by it, so two
-- installations sharing one server (staging beside production, a developer's instance
-- beside the test suite) never read each other's events (ADR 0004).
CREATE TABLE installation (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- One row, ever.
    one        boolean     NOT NULL DEFAULT true UNIQUE CHECK (one)
);
INSERT INTO installation DEFAULT VALUES;
