-- Cancellation requested through the API reaches whichever worker runs the execution:
-- that worker polls for this column on its running executions.
ALTER TABLE executions ADD COLUMN cancel_requested_at TEXT;

-- When the status last changed: the feed of status changes (/admin/stream) reads by it.
ALTER TABLE executions ADD COLUMN status_changed_at TEXT;
UPDATE executions SET status_changed_at = COALESCE(finished_at, started_at, created_at);
CREATE INDEX executions_status_changed ON executions (status_changed_at, id);
