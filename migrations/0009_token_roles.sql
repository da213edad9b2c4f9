-- Admin tokens get a role: 'admin' (everything) or 'viewer' (read-only). Existing
-- tokens keep full access.
ALTER TABLE admin_tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
