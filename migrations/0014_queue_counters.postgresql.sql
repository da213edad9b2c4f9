-- The queue depth of a trigger becomes two counters in two tables: executions that entered
-- the queue (queue_entries) and executions that left it (queue_exits); queued = entered - left,
-- read through the view queue_depth, which keeps the columns of the table it replaces.
-- Admission locks the trigger's entries row (FOR UPDATE) and ingest increments it; claims,
-- cancellations and deletes increment the exits row. With one row for both, every ingest of
-- a trigger waited for the claim that held the row and every claim for the ingests, until
-- each committed. Exits only grow, so an admission that reads them from an older snapshot
-- overstates the queue: queue_max is never exceeded. Both counters are BIGINT: they count
-- every execution ever queued.
CREATE TABLE queue_entries (
    trigger TEXT PRIMARY KEY,
    total   BIGINT NOT NULL
);

CREATE TABLE queue_exits (
    trigger TEXT PRIMARY KEY,
    total   BIGINT NOT NULL
);

INSERT INTO queue_entries (trigger, total) SELECT trigger, queued FROM queue_depth;
-- Every trigger starts with its entries row, so that even its first deliveries are admitted
-- in one statement (app/store/ingest_records.py).
INSERT INTO queue_entries (trigger, total)
SELECT name, 0 FROM triggers WHERE name NOT IN (SELECT trigger FROM queue_entries);

DROP TRIGGER queue_depth_track ON executions;
DROP FUNCTION queue_depth_track();
DROP TABLE queue_depth;

CREATE VIEW queue_depth AS
SELECT entries.trigger, entries.total - COALESCE(exits.total, 0) AS queued
FROM queue_entries AS entries
LEFT JOIN queue_exits AS exits ON exits.trigger = entries.trigger;

CREATE FUNCTION queue_counters_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status = 'queued'
       AND (TG_OP = 'DELETE' OR NEW.status <> 'queued') THEN
        INSERT INTO queue_exits (trigger, total) VALUES (OLD.trigger, 1)
        ON CONFLICT (trigger) DO UPDATE SET total = queue_exits.total + 1;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.status = 'queued'
       AND (TG_OP = 'INSERT' OR OLD.status <> 'queued') THEN
        INSERT INTO queue_entries (trigger, total) VALUES (NEW.trigger, 1)
        ON CONFLICT (trigger) DO UPDATE SET total = queue_entries.total + 1;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER queue_counters_track AFTER INSERT OR UPDATE OF status OR DELETE ON executions
FOR EACH ROW EXECUTE FUNCTION queue_counters_track();
