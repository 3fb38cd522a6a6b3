-- Companies: the `companies` read model, and the links of contacts to companies (one
-- primary) in the contacts read model.
CREATE TABLE companies (
    tenant_id  uuid        NOT NULL,
    id         uuid        NOT NULL,
    name       text        NOT NULL,
    domain     text,
    fields     jsonb       NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version    bigint      NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX companies_name_idx ON companies (tenant_id, lower(name), id);

ALTER TABLE contacts
    ADD COLUMN company_ids        uuid[] NOT NULL DEFAULT '{}',
    ADD COLUMN primary_company_id uuid;
CREATE INDEX contacts_company_ids_idx ON contacts USING gin (company_ids);
