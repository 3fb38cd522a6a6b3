-- Read model of the `contact_timeline` projection: everything that happened to a contact,
-- newest first — its own events now; messages, opens, clicks, segment entries and form
-- submissions join it as those contexts arrive (any event naming the contact).
CREATE TABLE contact_timeline (
    tenant_id       uuid        NOT NULL,
    contact_id      uuid        NOT NULL,
    tx_id           bigint      NOT NULL,
    global_position bigint      NOT NULL,
    event_id        uuid        NOT NULL,
    recorded_at     timestamptz NOT NULL,
    aggregate_type  text        NOT NULL,
    event_type      text        NOT NULL,
    actor           text,
    -- What the event says, less secrets (as the log has it).
    data            jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, contact_id, tx_id, global_position)
);
