-- Segments: the `segments` read model, who is in which segment, and the queue of segments
-- to re-evaluate in full.
CREATE TABLE segments (
    tenant_id   uuid        NOT NULL,
    id          uuid        NOT NULL,
    name        text        NOT NULL,
    description text,
    kind        text        NOT NULL,
    rule        jsonb,
    compiled    jsonb,
    deleted     boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    version     bigint      NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX segments_name_idx ON segments (tenant_id, lower(name), id);

-- Who is in which segment now: the state of the `segment_membership` streams, written in
-- the same transaction as their SegmentEntered / SegmentExited events by the one writer
-- (commands::segments::membership). It is write-side state (it decides what is appended),
-- not a projection; a test checks it against the fold of the streams.
CREATE TABLE segment_members (
    tenant_id  uuid        NOT NULL,
    segment_id uuid        NOT NULL,
    contact_id uuid        NOT NULL,
    entered_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, segment_id, contact_id)
);
CREATE INDEX segment_members_contact_idx ON segment_members (tenant_id, contact_id);

-- Segments to re-evaluate in full: a new or changed rule, a deletion, rules on relative
-- dates (on a schedule). Claimed with FOR UPDATE SKIP LOCKED and a lease, so no
-- transaction stays open during a refresh.
CREATE TABLE segment_refresh (
    tenant_id    uuid        NOT NULL,
    segment_id   uuid        NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    -- A refresher working on it holds it until then (a lease, renewed per page).
    claimed_until timestamptz,
    PRIMARY KEY (tenant_id, segment_id)
);

-- Rules over custom fields (equality by containment) and tags.
CREATE INDEX contacts_fields_idx ON contacts USING gin (fields jsonb_path_ops);
CREATE INDEX contacts_tags_idx ON contacts USING gin (tags);
