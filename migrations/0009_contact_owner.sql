-- Contacts read model: the member of the organization who owns the contact.
ALTER TABLE contacts ADD COLUMN owner_id uuid;
CREATE INDEX contacts_owner_idx ON contacts (tenant_id, owner_id) WHERE owner_id IS NOT NULL;
