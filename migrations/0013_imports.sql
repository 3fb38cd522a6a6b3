-- CSV imports of contacts (commands::imports): operational state of a background job, not
-- facts (the contacts it creates and changes are events in the log). Progress is written in
-- the same transaction as each batch's events, so `offset`/`line` always name the first
-- record not yet applied: a crashed import resumes there.
CREATE TABLE imports (
    tenant_id    uuid        NOT NULL,
    id           uuid        NOT NULL,
    status       text        NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    -- The options as given (mapping, tags, update_existing), and who started it (the
    -- metadata every event of the import carries).
    options      jsonb       NOT NULL,
    metadata     jsonb       NOT NULL,
    file_name    text,
    -- Where the upload is stored, and its size.
    path         text        NOT NULL,
    bytes        bigint      NOT NULL DEFAULT 0,
    -- Resume point: the byte offset and physical line of the next record to read.
    "offset"     bigint      NOT NULL DEFAULT 0,
    line         bigint      NOT NULL DEFAULT 1,
    rows_done    bigint      NOT NULL DEFAULT 0,
    created      bigint      NOT NULL DEFAULT 0,
    updated      bigint      NOT NULL DEFAULT 0,
    unchanged    bigint      NOT NULL DEFAULT 0,
    failed       bigint      NOT NULL DEFAULT 0,
    error        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX imports_running_idx ON imports (status) WHERE status = 'running';

-- One row per record that could not be applied (the import goes on without it).
CREATE TABLE import_errors (
    tenant_id  uuid   NOT NULL,
    import_id  uuid   NOT NULL,
    line       bigint NOT NULL,
    reason     text   NOT NULL,
    PRIMARY KEY (tenant_id, import_id, line),
    FOREIGN KEY (tenant_id, import_id) REFERENCES imports (tenant_id, id)
);
