-- Contacts read model: consent and do-not-contact per channel, frequency rules, stage,
-- points. `mauntic replay rebuild contacts` fills them for existing contacts (all new
-- events; existing rows get the defaults, which is what their history says).
ALTER TABLE contacts
    ADD COLUMN consent        jsonb  NOT NULL DEFAULT '{}',
    ADD COLUMN do_not_contact jsonb  NOT NULL DEFAULT '{}',
    ADD COLUMN frequency      jsonb  NOT NULL DEFAULT '{}',
    ADD COLUMN stage          text,
    ADD COLUMN points         bigint NOT NULL DEFAULT 0;
