-- Delivery: the write-side state of delivery jobs that the log alone cannot answer quickly.
-- Each table changes only in the transaction that appends the matching job events.

-- Jobs still to be handled by a worker. A row is inserted with `DeliveryRequested`; a worker
-- claims due rows with `FOR UPDATE SKIP LOCKED` and moves `due_at` forward by its lease, so a
-- worker that dies leaves the row due again when the lease lapses (and the job's stream says
-- how far it got). The row goes when the job reaches an outcome (sent, suppressed, given up,
-- in doubt, cancelled); a deferral or a retry moves `due_at`.
CREATE TABLE delivery_queue (
    tenant_id   uuid        NOT NULL,
    job_id      uuid        NOT NULL,
    channel     text        NOT NULL,
    due_at      timestamptz NOT NULL,
    -- Claims so far: a row claimed again while its job is dispatching was left by a crash.
    claims      int         NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, job_id)
);
CREATE INDEX delivery_queue_due ON delivery_queue (due_at);

-- Messages handed to a provider per contact and channel: the frequency rules count them.
CREATE TABLE delivery_sends (
    tenant_id  uuid        NOT NULL,
    contact_id uuid        NOT NULL,
    channel    text        NOT NULL,
    job_id     uuid        NOT NULL,
    at         timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, contact_id, channel, at, job_id)
);

-- The provider's id of each message sent: delivery, bounce and complaint reports name it.
CREATE TABLE delivery_provider_messages (
    provider            text NOT NULL,
    provider_message_id text NOT NULL,
    tenant_id           uuid NOT NULL,
    job_id              uuid NOT NULL,
    PRIMARY KEY (provider, provider_message_id)
);

-- Shared allowances: a sending domain's warmup day, a provider's rate (tokens per second).
-- Every worker process takes from the same row, so a limit holds across processes.
CREATE TABLE delivery_allowances (
    tenant_id    uuid        NOT NULL,
    scope        text        NOT NULL,
    -- The end of the window (a warmup day ends at the next midnight in its zone).
    window_end   timestamptz NOT NULL,
    used         bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, scope, window_end)
);
CREATE TABLE delivery_rate_buckets (
    tenant_id    uuid        NOT NULL,
    scope        text        NOT NULL,
    tokens       float8      NOT NULL,
    refreshed_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, scope)
);

-- Warmup schedules per sending domain (operational settings, like a provider's rate).
CREATE TABLE delivery_warmup (
    tenant_id  uuid        NOT NULL,
    domain     text        NOT NULL,
    started_on date        NOT NULL,
    time_zone  text        NOT NULL DEFAULT 'UTC',
    -- Daily limits of the first days, then `growth` per day up to `ceiling` (warm; none:
    -- the ramp never ends).
    ramp       bigint[]    NOT NULL,
    growth     float8      NOT NULL,
    ceiling    bigint,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, domain)
);

-- The built-in development mailbox: the default email provider of an organization without
-- one. Messages are kept as sent (the full RFC 5322 text) and listed by the API.
CREATE TABLE dev_mailbox (
    tenant_id   uuid        NOT NULL,
    id          bigint      GENERATED ALWAYS AS IDENTITY,
    job_id      uuid        NOT NULL,
    message_id  text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    sender      text        NOT NULL,
    recipient   text        NOT NULL,
    subject     text        NOT NULL,
    html        text        NOT NULL,
    text        text        NOT NULL,
    raw         text        NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX dev_mailbox_job ON dev_mailbox (tenant_id, job_id);

-- Read model of the `deliveries` projection: one row per job.
CREATE TABLE deliveries (
    tenant_id           uuid        NOT NULL,
    id                  uuid        NOT NULL,
    channel             text        NOT NULL,
    contact_id          uuid,
    recipient           text,
    template_id         uuid        NOT NULL,
    template_version    int         NOT NULL,
    source              text        NOT NULL,
    source_id           uuid,
    status              text        NOT NULL,
    reason              jsonb,
    attempts            int         NOT NULL DEFAULT 0,
    provider            text,
    provider_message_id text,
    retry_at            timestamptz,
    opens               int         NOT NULL DEFAULT 0,
    clicks              int         NOT NULL DEFAULT 0,
    unsubscribed        boolean     NOT NULL DEFAULT false,
    requested_at        timestamptz NOT NULL,
    sent_at             timestamptz,
    updated_at          timestamptz NOT NULL,
    version             bigint      NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX deliveries_list ON deliveries (tenant_id, requested_at DESC, id DESC);
CREATE INDEX deliveries_status ON deliveries (tenant_id, status, requested_at DESC, id DESC);
CREATE INDEX deliveries_contact ON deliveries (tenant_id, contact_id, requested_at DESC, id DESC);
CREATE INDEX deliveries_source ON deliveries (tenant_id, source_id, requested_at DESC, id DESC);
