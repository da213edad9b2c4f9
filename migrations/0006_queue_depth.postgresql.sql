-- Queued executions per trigger, kept exact by a trigger on every change of status, so
-- ingest admission (on_busy: queue, queue_max) reads one row however long a backlog grows.
-- On PostgreSQL the row is also what claims and admission lock (FOR UPDATE) to serialise
-- per trigger across hosts.
CREATE TABLE queue_depth (
    trigger TEXT PRIMARY KEY,
    queued  INTEGER NOT NULL
);

INSERT INTO queue_depth (trigger, queued)
SELECT trigger, COUNT(*) FROM executions WHERE status = 'queued' GROUP BY trigger;

CREATE FUNCTION queue_depth_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status = 'queued'
       AND (TG_OP = 'DELETE' OR NEW.status <> 'queued') THEN
        UPDATE queue_depth SET queued = queued - 1 WHERE trigger = OLD.trigger;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.status = 'queued'
       AND (TG_OP = 'INSERT' OR OLD.status <> 'queued') THEN
        INSERT INTO queue_depth (trigger, queued) VALUES (NEW.trigger, 1)
        ON CONFLICT (trigger) DO UPDATE SET queued = queue_depth.queued + 1;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER queue_depth_track AFTER INSERT OR UPDATE OF status OR DELETE ON executions
FOR EACH ROW EXECUTE FUNCTION queue_depth_track();
