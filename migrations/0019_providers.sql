-- Channel providers of organizations (aggregate `delivery_provider`).
--
-- Write side (changed only in the transaction that appends the provider's events, like
-- `segment_members`): `provider_configs` is what delivery resolves a provider from, and
-- `provider_secrets` holds the credentials, which never enter the log.
CREATE TABLE provider_configs (
    tenant_id      uuid    NOT NULL,
    id             uuid    NOT NULL,
    channel        text    NOT NULL,
    kind           text    NOT NULL,
    name           text    NOT NULL,
    -- Non-secret settings (the same object the events carry).
    settings       jsonb   NOT NULL,
    is_default     boolean NOT NULL DEFAULT false,
    -- The stream sequence of the last event that changed settings or secrets: a worker's
    -- cache key for the provider it built.
    config_version bigint  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
-- At most one default per organization and channel.
CREATE UNIQUE INDEX provider_configs_one_default
    ON provider_configs (tenant_id, channel) WHERE is_default;

CREATE TABLE provider_secrets (
    tenant_id       uuid        NOT NULL,
    provider_id     uuid        NOT NULL,
    secrets_version integer     NOT NULL,
    -- Which master key sealed the row (a fingerprint of it, never the key).
    key_id          text        NOT NULL,
    -- nonce (12 bytes) || AES-256-GCM(master key, secrets JSON,
    --                               aad = "<tenant>:<provider>:<secrets_version>")
    ciphertext      bytea       NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, provider_id)
);
CREATE INDEX provider_secrets_key ON provider_secrets (key_id);

-- Read model `providers` (projection "providers"): no secret values, only their names.
CREATE TABLE providers (
    tenant_id       uuid        NOT NULL,
    id              uuid        NOT NULL,
    name            text        NOT NULL,
    channel         text        NOT NULL,
    kind            text        NOT NULL,
    settings        jsonb       NOT NULL,
    secret_fields   jsonb       NOT NULL DEFAULT '[]',
    secrets_version integer     NOT NULL,
    is_default      boolean     NOT NULL DEFAULT false,
    removed         boolean     NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    version         bigint      NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX providers_channel_idx ON providers (tenant_id, channel, lower(name), id);
