-- Contacts read model: phone (E.164), time zone (IANA) and locale of each contact.
ALTER TABLE contacts
    ADD COLUMN phone     text,
    ADD COLUMN time_zone text,
    ADD COLUMN locale    text;
