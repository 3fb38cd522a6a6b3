-- Campaign jobs in the delivery queue.
--
-- `campaign_id`: the campaign of a `Source::Campaign` job (NULL for every other job), so a
-- campaign can hold, release and count its queue rows without reading the log.
-- `held`: a paused campaign's rows. A held row is never claimed, whatever its `due_at`; it
-- keeps its place (due time, claims) and is claimed as usual once released.
-- Both columns have constant defaults: adding them rewrites nothing.
ALTER TABLE delivery_queue
    ADD COLUMN campaign_id uuid,
    ADD COLUMN held        boolean NOT NULL DEFAULT false;

-- Claims scan due rows in `due_at` order. A paused blast may leave a million held rows due:
-- the claim's index holds only rows that can be claimed, so they cost it nothing. The
-- claim (`workers::delivery::worker::queue`) repeats the predicate `NOT held` so the
-- planner can use it.
DROP INDEX delivery_queue_due;
CREATE INDEX delivery_queue_due ON delivery_queue (due_at) WHERE NOT held;

-- A campaign's rows: pause and resume (`hold_campaign`), and what is left to send
-- (`campaign_pending`).
CREATE INDEX delivery_queue_campaign ON delivery_queue (tenant_id, campaign_id)
    WHERE campaign_id IS NOT NULL;
