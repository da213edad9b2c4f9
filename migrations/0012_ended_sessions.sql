-- Dashboard sessions that were signed out before their cookie expires. A session cookie
-- is signed, not stored; signing out records the digest of the session's own random
-- token here, so a copy of the cookie stops working on every worker and host. A row is
-- kept only until the cookie would have expired anyway (the scheduler removes it then).
CREATE TABLE ended_sessions (
    session_digest TEXT PRIMARY KEY,
    ended_at       TEXT NOT NULL,
    expires_at     TEXT NOT NULL
);

CREATE INDEX ended_sessions_expiry ON ended_sessions (expires_at);
