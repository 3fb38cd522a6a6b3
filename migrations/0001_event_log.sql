-- The event log: postgres-es's `events` shape, plus columns filled by defaults so the
-- stock postgres-es INSERT (which names its seven columns) fills them too.
CREATE TABLE events (
    aggregate_type  text        NOT NULL,
    aggregate_id    text        NOT NULL,
    sequence        bigint      NOT NULL CHECK (sequence >= 0),
    event_type      text        NOT NULL,
    event_version   text        NOT NULL,
    payload         jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    -- Commit-safe global order is (tx_id, global_position); see ARCHITECTURE.md "The cursor".
    global_position bigint      GENERATED ALWAYS AS IDENTITY,
    tx_id           xid8        NOT NULL DEFAULT pg_current_xact_id(),
    event_id        uuid        NOT NULL DEFAULT gen_random_uuid(),
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    -- Aggregate ids are "<tenant uuid>:<entity uuid>": the tenant is part of every stream id.
    tenant_id       uuid        NOT NULL GENERATED ALWAYS AS (split_part(aggregate_id, ':', 1)::uuid) STORED,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE UNIQUE INDEX events_cursor_idx ON events (tx_id, global_position);
CREATE UNIQUE INDEX events_event_id_idx ON events (event_id);

-- Append-only: no UPDATE, DELETE or TRUNCATE, ever.
CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: % on events is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER events_no_update_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();

-- Wake-ups: writers send NOTIFY mauntic_events after committing (outside the writing
-- transaction, coalesced; see event_store::wakeup::Notifier). Polling is the fallback.

-- Positions of every reader of the log: the relay and each projection (and rebuilds).
CREATE TABLE checkpoints (
    name            text        PRIMARY KEY,
    tx_id           bigint      NOT NULL DEFAULT 0,
    global_position bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Minimal tenancy (the identity issue replaces it with Organization and ApiKey aggregates).
CREATE TABLE tenants (
    id         uuid        PRIMARY KEY,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id         uuid        PRIMARY KEY,
    tenant_id  uuid        NOT NULL REFERENCES tenants (id),
    prefix     text        NOT NULL,
    key_hash   bytea       NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
