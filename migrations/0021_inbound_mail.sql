-- Inbound mail (bounces to bounce+<job>…@, ARF complaints naming a Message-ID <job>@…) names
-- a delivery job without its organization: find the organization of a job that was sent.
CREATE INDEX delivery_provider_messages_job ON delivery_provider_messages (job_id);
