-- Read model of the `contact_merges` projection: every merged contact and the contact that
-- answers for it now. Chains collapse (B merged into A, then A into C: B → C), so one
-- lookup resolves any id.
CREATE TABLE contact_merges (
    tenant_id   uuid        NOT NULL,
    id          uuid        NOT NULL,
    survivor_id uuid        NOT NULL,
    merged_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX contact_merges_survivor_idx ON contact_merges (tenant_id, survivor_id);

-- A merge hands the merged contact's reservations (email, unique field values) to the
-- survivor: find them by holder.
CREATE INDEX reservations_owner_idx ON reservations (owner_id);
