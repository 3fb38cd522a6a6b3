-- The console's contact search: emails by prefix within an organization (a btree over the
-- lowercased email with pattern ops, so `LIKE 'ada%'` is an index range).
CREATE INDEX contacts_email_prefix_idx ON contacts (tenant_id, email text_pattern_ops);
