-- Read model of the `contact_notes` projection: the notes on contacts.
CREATE TABLE contact_notes (
    tenant_id  uuid        NOT NULL,
    id         uuid        NOT NULL,
    contact_id uuid        NOT NULL,
    text       text        NOT NULL,
    -- `user:<id>` or `apikey:<id>`.
    author     text,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX contact_notes_contact_idx ON contact_notes (tenant_id, contact_id, created_at DESC);
