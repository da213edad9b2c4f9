-- The queue depth of a trigger becomes two counters, as on PostgreSQL: executions that
-- entered the queue (queue_entries) and executions that left it (queue_exits), read through
-- the view queue_depth (queued = entered - left). SQLite's write lock serialises every
-- writer anyway; the schema is the same on both stores so the code reads one shape.
CREATE TABLE queue_entries (
    trigger TEXT PRIMARY KEY,
    total   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE queue_exits (
    trigger TEXT PRIMARY KEY,
    total   INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO queue_entries (trigger, total) SELECT trigger, queued FROM queue_depth;
-- Every trigger starts with its entries row, so that even its first deliveries are admitted
-- in one statement (app/store/ingest_records.py).
INSERT INTO queue_entries (trigger, total)
SELECT name, 0 FROM triggers WHERE name NOT IN (SELECT trigger FROM queue_entries);

DROP TRIGGER queue_depth_on_insert;
DROP TRIGGER queue_depth_on_enter;
DROP TRIGGER queue_depth_on_leave;
DROP TRIGGER queue_depth_on_delete;
DROP TABLE queue_depth;

CREATE VIEW queue_depth AS
SELECT entries.trigger, entries.total - COALESCE(exits.total, 0) AS queued
FROM queue_entries AS entries
LEFT JOIN queue_exits AS exits ON exits.trigger = entries.trigger;

CREATE TRIGGER queue_entries_on_insert AFTER INSERT ON executions
WHEN NEW.status = 'queued'
BEGIN
    INSERT INTO queue_entries (trigger, total) VALUES (NEW.trigger, 1)
    ON CONFLICT (trigger) DO UPDATE SET total = total + 1;
END;

CREATE TRIGGER queue_entries_on_enter AFTER UPDATE OF status ON executions
WHEN OLD.status != 'queued' AND NEW.status = 'queued'
BEGIN
    INSERT INTO queue_entries (trigger, total) VALUES (NEW.trigger, 1)
    ON CONFLICT (trigger) DO UPDATE SET total = total + 1;
END;

CREATE TRIGGER queue_exits_on_leave AFTER UPDATE OF status ON executions
WHEN OLD.status = 'queued' AND NEW.status != 'queued'
BEGIN
    INSERT INTO queue_exits (trigger, total) VALUES (OLD.trigger, 1)
    ON CONFLICT (trigger) DO UPDATE SET total = total + 1;
END;

CREATE TRIGGER queue_exits_on_delete AFTER DELETE ON executions
WHEN OLD.status = 'queued'
BEGIN
    INSERT INTO queue_exits (trigger, total) VALUES (OLD.trigger, 1)
    ON CONFLICT (trigger) DO UPDATE SET total = total + 1;
END;
