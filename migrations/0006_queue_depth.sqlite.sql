-- Queued executions per trigger, kept exact by triggers on every change of status, so
-- ingest admission (on_busy: queue, queue_max) reads one row however long a backlog grows.
CREATE TABLE queue_depth (
    trigger TEXT PRIMARY KEY,
    queued  INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO queue_depth (trigger, queued)
SELECT trigger, COUNT(*) FROM executions WHERE status = 'queued' GROUP BY trigger;

CREATE TRIGGER queue_depth_on_insert AFTER INSERT ON executions
WHEN NEW.status = 'queued'
BEGIN
    INSERT INTO queue_depth (trigger, queued) VALUES (NEW.trigger, 1)
    ON CONFLICT (trigger) DO UPDATE SET queued = queued + 1;
END;

CREATE TRIGGER queue_depth_on_enter AFTER UPDATE OF status ON executions
WHEN OLD.status != 'queued' AND NEW.status = 'queued'
BEGIN
    INSERT INTO queue_depth (trigger, queued) VALUES (NEW.trigger, 1)
    ON CONFLICT (trigger) DO UPDATE SET queued = queued + 1;
END;

CREATE TRIGGER queue_depth_on_leave AFTER UPDATE OF status ON executions
WHEN OLD.status = 'queued' AND NEW.status != 'queued'
BEGIN
    UPDATE queue_depth SET queued = queued - 1 WHERE trigger = OLD.trigger;
END;

CREATE TRIGGER queue_depth_on_delete AFTER DELETE ON executions
WHEN OLD.status = 'queued'
BEGIN
    UPDATE queue_depth SET queued = queued - 1 WHERE trigger = OLD.trigger;
END;
