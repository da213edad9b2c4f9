"""``hookrunner`` subcommands for daily work, one module each (registered in :mod:`app.cli`).

They use the store directly - the same ``DATABASE_URL``/``HOOKRUNNER_HOME``
resolution as the server, said on stderr - so they work with the server stopped
or running, on SQLite or PostgreSQL. ``--json`` prints machine output on stdout.
"""
