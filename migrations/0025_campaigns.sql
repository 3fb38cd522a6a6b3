-- Campaigns: the write-side state of sends that the log alone cannot answer quickly. Each
-- table changes only in the transaction that appends the matching campaign events (or, for
-- the fan-out's progress, requests the matching delivery jobs).

-- A campaign the campaign worker has something to do for: start it (scheduled), fan it out,
-- choose its A/B winner, see it complete (sending), or cancel its pending jobs (cancelling).
-- A paused campaign's row waits. Claimed with FOR UPDATE SKIP LOCKED and a lease, so any
-- number of workers share the rows and a worker that dies leaves its row due again. Every
-- command on a campaign locks its row first (so a pause and a fan-out batch take turns).
CREATE TABLE campaign_runs (
    tenant_id    uuid        NOT NULL,
    campaign_id  uuid        NOT NULL,
    -- scheduled | sending | paused | cancelling
    state        text        NOT NULL,
    -- When the worker looks next.
    due_at       timestamptz NOT NULL,
    lease_until  timestamptz,
    -- The phase being fanned out (all | test | remainder) and the last contact done in it
    -- (recipients are read in contact-id order).
    phase        text,
    after_contact uuid,
    -- Jobs requested in the phase so far, and in the whole send (the throttle's slots).
    phase_queued bigint      NOT NULL DEFAULT 0,
    queued       bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, campaign_id)
);
CREATE INDEX campaign_runs_due ON campaign_runs (due_at) WHERE state <> 'paused';

-- The audience of a send, fixed when sending starts (one INSERT … SELECT from
-- segment_members, in the transaction that appends CampaignSendingStarted). `variant` is the
-- A/B test variant of a test-group recipient (NULL: not in the test group, or no test).
CREATE TABLE campaign_recipients (
    tenant_id   uuid NOT NULL,
    campaign_id uuid NOT NULL,
    contact_id  uuid NOT NULL,
    variant     text,
    PRIMARY KEY (tenant_id, campaign_id, contact_id)
);
