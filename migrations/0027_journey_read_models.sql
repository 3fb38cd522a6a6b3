-- Journeys, as users read them: built from the `journey` and `journey_execution` streams
-- by two projections.
--
-- `journeys` owns four tables, written in one transaction per batch under its one
-- checkpoint: execution events name their journey only in `JourneyEntered`, so the figures
-- need each execution's journey, version, wait and branches — its `journey_executions` row,
-- which this projection keeps itself. The counters have no per-row version to guard them:
-- the checkpoint does (events at or below it never reach `apply`).
-- `journey_version_defs` owns the published versions (immutable: inserted once).

-- One row per journey: its lifecycle and draft (from its stream; `version` = that stream's
-- sequence) and counters of its executions (added per batch).
CREATE TABLE journey_summaries (
    tenant_id      uuid        NOT NULL,
    id             uuid        NOT NULL,
    name           text        NOT NULL,
    -- draft | live | paused | archived
    status         text        NOT NULL,
    -- The latest published version (NULL: none yet).
    latest_version integer,
    draft          jsonb       NOT NULL,
    -- [{number, published_at}], oldest first.
    versions       jsonb       NOT NULL DEFAULT '[]',
    created_at     timestamptz NOT NULL,
    -- When the latest version was published.
    published_at   timestamptz,
    updated_at     timestamptz NOT NULL,
    entered        bigint      NOT NULL DEFAULT 0,
    -- entered − completed − exited − failed
    in_flight      bigint      NOT NULL DEFAULT 0,
    completed      bigint      NOT NULL DEFAULT 0,
    exited         bigint      NOT NULL DEFAULT 0,
    failed         bigint      NOT NULL DEFAULT 0,
    converted      bigint      NOT NULL DEFAULT 0,
    version        bigint      NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITH (fillfactor = 80);
-- The list: one index per sort (walked either way, keyset by (key, id)); with a status
-- filter, the status-led ones; name search by trigrams.
CREATE INDEX journey_summaries_created ON journey_summaries (tenant_id, created_at, id);
CREATE INDEX journey_summaries_name ON journey_summaries (tenant_id, lower(name), id);
CREATE INDEX journey_summaries_status_created ON journey_summaries
    (tenant_id, status, created_at, id);
CREATE INDEX journey_summaries_status_name ON journey_summaries
    (tenant_id, status, lower(name), id);
CREATE INDEX journey_summaries_name_trgm ON journey_summaries USING gin (name gin_trgm_ops);

-- One row per execution (one contact's way through one version). `sequence` is the
-- execution stream's. `branches`: [{step, branch}] in the order taken, for the per-branch
-- conversions.
CREATE TABLE journey_executions (
    tenant_id     uuid        NOT NULL,
    id            uuid        NOT NULL,
    journey_id    uuid        NOT NULL,
    version       integer     NOT NULL,
    contact_id    uuid        NOT NULL,
    trigger       text        NOT NULL,
    -- active | waiting | completed | exited | failed
    status        text        NOT NULL,
    -- The step to run next, the one waited at, or (finished) the last one.
    step          text,
    waiting_until timestamptz,
    -- The event a `delay_event` step waits for.
    waiting_for   text,
    entered_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    -- Why it exited (`exit_step`, `exit_criteria:<event>`, `journey_archived`, …).
    exit_reason   text,
    -- Why it failed.
    error         text,
    converted     boolean     NOT NULL DEFAULT false,
    converted_at  timestamptz,
    branches      jsonb       NOT NULL DEFAULT '[]',
    steps_run     integer     NOT NULL DEFAULT 0,
    sequence      bigint      NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITH (fillfactor = 80);
-- A journey's executions newest first, with or without a status filter; a contact's.
CREATE INDEX journey_executions_journey ON journey_executions
    (tenant_id, journey_id, entered_at DESC, id DESC);
CREATE INDEX journey_executions_journey_status ON journey_executions
    (tenant_id, journey_id, status, entered_at DESC, id DESC);
CREATE INDEX journey_executions_contact ON journey_executions
    (tenant_id, contact_id, entered_at DESC, id DESC);

-- Counters per published version (the summary's, split by version).
CREATE TABLE journey_version_stats (
    tenant_id  uuid    NOT NULL,
    journey_id uuid    NOT NULL,
    version    integer NOT NULL,
    entered    bigint  NOT NULL DEFAULT 0,
    in_flight  bigint  NOT NULL DEFAULT 0,
    completed  bigint  NOT NULL DEFAULT 0,
    exited     bigint  NOT NULL DEFAULT 0,
    failed     bigint  NOT NULL DEFAULT 0,
    converted  bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, journey_id, version)
);

-- Per step of a version: `runs` (the step completed or started a wait), `waiting` (there
-- now), `branches` ({branch: times taken}) and `conversions` ({branch: executions that took
-- it and then converted}).
CREATE TABLE journey_step_stats (
    tenant_id   uuid    NOT NULL,
    journey_id  uuid    NOT NULL,
    version     integer NOT NULL,
    step        text    NOT NULL,
    runs        bigint  NOT NULL DEFAULT 0,
    waiting     bigint  NOT NULL DEFAULT 0,
    branches    jsonb   NOT NULL DEFAULT '{}',
    conversions jsonb   NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, journey_id, version, step)
);

-- Published versions: the definition frozen and the checked rules of its conditions.
CREATE TABLE journey_version_defs (
    tenant_id    uuid        NOT NULL,
    journey_id   uuid        NOT NULL,
    version      integer     NOT NULL,
    definition   jsonb       NOT NULL,
    rules        jsonb       NOT NULL,
    published_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, journey_id, version)
);
