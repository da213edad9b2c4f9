"""The dashboard's sessions, CSRF tokens, templates and static files (routes: app.routes.ui)."""
