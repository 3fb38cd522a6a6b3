-- Campaigns, as users read them: three read models, each owned by one projection, and the
-- variant of a campaign's job on the `deliveries` read model.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- `campaign_summaries`: one row per campaign — its settings and lifecycle (from its own
-- stream, `version` = that stream's sequence) and counters of its delivery jobs (from their
-- events, which name the campaign; the runner's checkpoint keeps them from being counted
-- twice). A deleted campaign keeps its row, flagged, so late job events still add up.
-- Counters change often and are not indexed: a fill factor below 100 leaves room for HOT
-- updates.
CREATE TABLE campaign_summaries (
    tenant_id      uuid        NOT NULL,
    id             uuid        NOT NULL,
    name           text        NOT NULL,
    -- draft | scheduled | sending | paused | sent | cancelled | deleted
    status         text        NOT NULL,
    channel        text        NOT NULL,
    settings       jsonb       NOT NULL,
    schedule       jsonb,
    -- When sending starts (scheduled campaigns): the list sorts by it.
    starts_at      timestamptz,
    -- [{variant, template_id, version}] once sending started.
    pinned         jsonb       NOT NULL DEFAULT '[]',
    audience       bigint      NOT NULL DEFAULT 0,
    test_group     bigint      NOT NULL DEFAULT 0,
    -- Jobs requested so far (live fan-out progress), and what became of them.
    queued         bigint      NOT NULL DEFAULT 0,
    sent           bigint      NOT NULL DEFAULT 0,
    delivered      bigint      NOT NULL DEFAULT 0,
    -- Recipients who opened / clicked at least once.
    opened         bigint      NOT NULL DEFAULT 0,
    clicked        bigint      NOT NULL DEFAULT 0,
    bounced        bigint      NOT NULL DEFAULT 0,
    complained     bigint      NOT NULL DEFAULT 0,
    unsubscribed   bigint      NOT NULL DEFAULT 0,
    suppressed     bigint      NOT NULL DEFAULT 0,
    -- Given up.
    failed         bigint      NOT NULL DEFAULT 0,
    in_doubt       bigint      NOT NULL DEFAULT 0,
    cancelled_jobs bigint      NOT NULL DEFAULT 0,
    -- Suppressed jobs by the suppression's kind: {"opted_out": 3, "no_address": 1, …}.
    skipped        jsonb       NOT NULL DEFAULT '{}',
    winner         text,
    -- The CampaignWinnerChosen payload: {winner, metric, figures, at}.
    ab_decision    jsonb,
    cloned_from    uuid,
    deleted        boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL,
    started_at     timestamptz,
    -- Sent or cancelled.
    finished_at    timestamptz,
    updated_at     timestamptz NOT NULL,
    version        bigint      NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITH (fillfactor = 80);
-- The list: one index per sort (each walked either way, keyset by (key, id)); with a status
-- filter, the status-led ones. Unscheduled campaigns sort as starting last.
CREATE INDEX campaign_summaries_created ON campaign_summaries (tenant_id, created_at, id)
    WHERE NOT deleted;
CREATE INDEX campaign_summaries_name ON campaign_summaries (tenant_id, lower(name), id)
    WHERE NOT deleted;
CREATE INDEX campaign_summaries_starts ON campaign_summaries
    (tenant_id, coalesce(starts_at, 'infinity'::timestamptz), id) WHERE NOT deleted;
CREATE INDEX campaign_summaries_status_created ON campaign_summaries
    (tenant_id, status, created_at, id) WHERE NOT deleted;
CREATE INDEX campaign_summaries_status_name ON campaign_summaries
    (tenant_id, status, lower(name), id) WHERE NOT deleted;
CREATE INDEX campaign_summaries_status_starts ON campaign_summaries
    (tenant_id, status, coalesce(starts_at, 'infinity'::timestamptz), id) WHERE NOT deleted;
-- Name search: a case-insensitive substring (ILIKE '%q%').
CREATE INDEX campaign_summaries_name_trgm ON campaign_summaries
    USING gin (name gin_trgm_ops) WHERE NOT deleted;

-- `campaign_rollups`: a campaign's delivery figures per variant ('' without an A/B test),
-- channel, and hour or day (UTC buckets of the events' `recorded_at`, so a rebuild puts
-- every event in the same bucket again). Added to, never rewritten.
CREATE TABLE campaign_rollups (
    tenant_id     uuid        NOT NULL,
    campaign_id   uuid        NOT NULL,
    variant       text        NOT NULL,
    channel       text        NOT NULL,
    -- hour | day
    granularity   text        NOT NULL,
    bucket        timestamptz NOT NULL,
    sent          bigint      NOT NULL DEFAULT 0,
    delivered     bigint      NOT NULL DEFAULT 0,
    bounced       bigint      NOT NULL DEFAULT 0,
    complained    bigint      NOT NULL DEFAULT 0,
    opens         bigint      NOT NULL DEFAULT 0,
    unique_opens  bigint      NOT NULL DEFAULT 0,
    clicks        bigint      NOT NULL DEFAULT 0,
    unique_clicks bigint      NOT NULL DEFAULT 0,
    unsubscribes  bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, campaign_id, granularity, bucket, variant, channel)
);

-- `campaign_link_clicks`: clicks per link of a campaign. `unique_clicks` of a link counts
-- the recipients whose first click (on any link of the message) was on it, so the links'
-- unique clicks add up to the campaign's clickers. URLs are cut to 1,024 bytes (an index key
-- has a size limit; a longer URL would stop the projection).
CREATE TABLE campaign_link_clicks (
    tenant_id     uuid   NOT NULL,
    campaign_id   uuid   NOT NULL,
    url           text   NOT NULL,
    clicks        bigint NOT NULL DEFAULT 0,
    unique_clicks bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, campaign_id, url)
);

-- The A/B test variant of a campaign's job (NULL: none, or written before this column).
ALTER TABLE deliveries ADD COLUMN variant text;
