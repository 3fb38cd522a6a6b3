-- Crypto-shredding (ADR 0003): one AES-256-GCM key per contact stream, outside the log.
-- Personal values in the contact's events are encrypted with it; erasing the contact sets
-- `wrapped_key` to NULL (the key is gone for good, the row stays as a tombstone so no new
-- key is ever made for an erased contact).
CREATE TABLE contact_keys (
    -- The contact's stream id, "<tenant uuid>:<contact uuid>".
    stream_id   text PRIMARY KEY,
    tenant_id   uuid GENERATED ALWAYS AS (split_part(stream_id, ':', 1)::uuid) STORED,
    -- nonce (12 bytes) || AES-256-GCM(master key, contact key, aad = stream id); NULL once erased.
    wrapped_key bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    erased_at   timestamptz,
    CHECK ((wrapped_key IS NULL) = (erased_at IS NOT NULL))
);

CREATE INDEX contact_keys_tenant ON contact_keys (tenant_id);
