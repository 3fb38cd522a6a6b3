-- Templates: the `templates` read model, one row per template with its versions (a few
-- kilobytes each; a template has tens of versions, not thousands).
CREATE TABLE templates (
    tenant_id         uuid        NOT NULL,
    id                uuid        NOT NULL,
    name              text        NOT NULL,
    channel           text        NOT NULL,
    latest_version    integer     NOT NULL DEFAULT 0,
    published_version integer,
    -- [{version, content, saved_at}], in version order.
    versions          jsonb       NOT NULL DEFAULT '[]',
    deleted           boolean     NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    version           bigint      NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX templates_name_idx ON templates (tenant_id, lower(name), id);
