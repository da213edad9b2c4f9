-- Leases that elect one process to run each scheduled job per interval
-- (see app/scheduler.py). PostgreSQL may use advisory locks instead.
CREATE TABLE scheduler_leases (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    last_run_at TEXT
);
