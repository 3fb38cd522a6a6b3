-- Warmup configurations of sending domains (aggregate `delivery_warmup`).
--
-- `delivery_warmup` becomes the read model of projection "warmup": a row per domain whose
-- warmup is configured, gone when it is removed. The delivery worker reads it. Rows from
-- before this migration were written by hand (there was no API); they stay until the
-- domain is configured through the API (which replaces them) or the projection is rebuilt
-- (which keeps only what the log says).
ALTER TABLE delivery_warmup
    -- The aggregate's id (derived from the tenant and the domain); null on hand-written rows.
    ADD COLUMN id         uuid,
    ADD COLUMN created_at timestamptz,
    -- The stream sequence of the last event applied.
    ADD COLUMN version    bigint NOT NULL DEFAULT 0;
