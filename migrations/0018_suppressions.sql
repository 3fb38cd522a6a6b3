-- The suppression list's read model: one row per entry (organization, channel, normalized
-- address), active or removed. The address is kept in clear here (the log seals it); its
-- "C" collation makes prefix searches (`LIKE 'ada%'`) and the worker's equality lookups
-- plain btree range scans.
CREATE TABLE suppressions (
    tenant_id  uuid        NOT NULL,
    id         uuid        NOT NULL,
    channel    text        NOT NULL,
    address    text        COLLATE "C" NOT NULL,
    -- The reason of the last suppression (kept after a removal, for the list).
    reason     text        NOT NULL,
    -- Where the last change came from (a job, a provider report, a user, an import).
    source     text,
    active     boolean     NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version    bigint      NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
-- The list, newest first (keyset pages on (created_at, id)).
CREATE INDEX suppressions_list_idx ON suppressions (tenant_id, created_at DESC, id DESC);
-- The delivery worker's lookup of a batch of addresses, and prefix searches on a channel.
CREATE INDEX suppressions_lookup_idx ON suppressions (tenant_id, channel, address) WHERE active;
-- Prefix searches over every channel.
CREATE INDEX suppressions_address_idx ON suppressions (tenant_id, address);
