-- Secrets the server makes for itself and shares between its workers and hosts (the
-- dashboard's session-signing key when SESSION_SECRET is unset). Created once, never
-- rotated by a migration.
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at TEXT NOT NULL
);
