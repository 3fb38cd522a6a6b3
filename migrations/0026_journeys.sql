-- Journeys: the write-side state the journey worker runs on. Every table changes only in the
-- transaction that appends the matching journey or execution events.

-- A journey that was published: its status and latest version. Journey commands lock this
-- row first, so a pause and a running batch's entries take turns.
CREATE TABLE journey_states (
    tenant_id  uuid    NOT NULL,
    journey_id uuid    NOT NULL,
    -- live | paused | archived
    status     text    NOT NULL,
    version    integer NOT NULL,
    PRIMARY KEY (tenant_id, journey_id)
);

-- Published versions, immutable: the domain's `Version` (definition and checked rules).
CREATE TABLE journey_versions (
    tenant_id    uuid        NOT NULL,
    journey_id   uuid        NOT NULL,
    version      integer     NOT NULL,
    body         jsonb       NOT NULL,
    published_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, journey_id, version)
);

-- The triggers of live journeys' latest versions (replaced at each publish, gone at archive):
-- what the trigger worker matches events and segment entries against, and when a schedule
-- runs next.
CREATE TABLE journey_triggers (
    tenant_id   uuid NOT NULL,
    journey_id  uuid NOT NULL,
    trigger_id  text NOT NULL,
    -- event | segment_entered | schedule | api
    kind        text NOT NULL,
    event_name  text,
    segment_id  uuid,
    next_run_at timestamptz,
    PRIMARY KEY (tenant_id, journey_id, trigger_id)
);
CREATE INDEX journey_triggers_event ON journey_triggers (tenant_id, event_name)
    WHERE event_name IS NOT NULL;
CREATE INDEX journey_triggers_segment ON journey_triggers (tenant_id, segment_id)
    WHERE kind = 'segment_entered';
CREATE INDEX journey_triggers_schedule ON journey_triggers (next_run_at)
    WHERE kind = 'schedule';

-- Executions in flight: the execution's state (the domain's `Execution`, folded), its
-- stream's version, when it is due (a delay's end, a timeout, now) — the timer table — and the
-- signals it listens for. Claimed with FOR UPDATE SKIP LOCKED inside the transaction that
-- runs them, so any number of workers share the rows and a worker that dies leaves its rows
-- due. A finished execution's row is deleted in the transaction of its last event.
CREATE TABLE journey_runs (
    tenant_id    uuid        NOT NULL,
    execution_id uuid        NOT NULL,
    journey_id   uuid        NOT NULL,
    version      integer     NOT NULL,
    contact_id   uuid        NOT NULL,
    seq          bigint      NOT NULL,
    state        jsonb       NOT NULL,
    due_at       timestamptz,
    -- A paused journey's executions hold where they are.
    held         boolean     NOT NULL DEFAULT false,
    listens      text[]      NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, execution_id)
);
CREATE INDEX journey_runs_due ON journey_runs (due_at) WHERE due_at IS NOT NULL AND NOT held;
CREATE INDEX journey_runs_contact ON journey_runs (tenant_id, contact_id);
CREATE INDEX journey_runs_journey ON journey_runs (tenant_id, journey_id);

-- Signals for executions (a contact event, a segment exit, a change, an archive), taken by
-- the run that consumes them.
CREATE TABLE journey_inbox (
    id           bigserial   PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    execution_id uuid        NOT NULL,
    signal       jsonb       NOT NULL
);
CREATE INDEX journey_inbox_execution ON journey_inbox (tenant_id, execution_id);

-- Who entered which journey: the re-entry policy's memory (`active`: executions in flight).
CREATE TABLE journey_entries (
    tenant_id       uuid        NOT NULL,
    journey_id      uuid        NOT NULL,
    contact_id      uuid        NOT NULL,
    last_entered_at timestamptz NOT NULL,
    entries         bigint      NOT NULL DEFAULT 1,
    active          bigint      NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant_id, journey_id, contact_id)
);

-- Balancer paths' places taken per window.
CREATE TABLE journey_balancer (
    tenant_id    uuid        NOT NULL,
    journey_id   uuid        NOT NULL,
    step         text        NOT NULL,
    path         text        NOT NULL,
    window_start timestamptz NOT NULL,
    taken        integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, journey_id, step, path, window_start)
);

