-- Keys derived from the master key for one purpose each (keyed digests: suppression entry
-- ids), kept with a lifetime of their own: made once from the master key of the day, then
-- stored sealed under the master key and re-sealed by `mauntic providers rotate-key`, so
-- rotating the master key does not move what was derived (event_store::shred::derived).
CREATE TABLE derived_keys (
    -- "suppression-entry-id", …: never renamed (the digests of the purpose would move).
    purpose    text        PRIMARY KEY,
    -- Which master key sealed the row (a fingerprint of it, never the key).
    key_id     text        NOT NULL,
    -- nonce (12 bytes) || AES-256-GCM(master key, the 32-byte derived key,
    --                               aad = "mauntic3/derived/<purpose>")
    ciphertext bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
