-- Read model of the `contacts` projection. Rebuilt with `mauntic replay rebuild contacts`.
CREATE TABLE contacts (
    tenant_id  uuid        NOT NULL,
    id         uuid        NOT NULL,
    email      text        NOT NULL,
    first_name text,
    last_name  text,
    fields     jsonb       NOT NULL DEFAULT '{}',
    tags       text[]      NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version    bigint      NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
