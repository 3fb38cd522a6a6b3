-- One contact per email in an organization (commands::contacts::unique): reserve the emails
-- of contacts created before reservations existed. Where old data already has two contacts
-- with one email, the older keeps the reservation.
INSERT INTO reservations (scope, value, tenant_id, owner_id)
SELECT DISTINCT ON (tenant_id, email) 'contact_email', tenant_id::text || ':' || email, tenant_id, id
FROM contacts
ORDER BY tenant_id, email, created_at
ON CONFLICT DO NOTHING;
