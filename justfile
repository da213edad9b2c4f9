# Hookrunner tasks. `just --list` shows them; `just check` is what CI runs.

# hookrunner and Gunicorn read .env themselves, the same way from every entry point.
set dotenv-load := false

# List the recipes.
default:
    @just --list

# Apply migrations, then serve on SQLite with auto-reload (development).
dev-backend:
    hookrunner migrate
    @echo "Admin token: set ADMIN_TOKEN, or run: hookrunner create-token"
    hookrunner serve --reload

# Serve with Gunicorn and gevent workers (production settings from the environment).
serve:
    hookrunner serve

# Run the test suite.
test *ARGS:
    python -m pytest {{ARGS}}

# Lint and check formatting.
lint:
    ruff check .
    ruff format --check .

# Format the code.
fmt:
    ruff check --fix .
    ruff format .

# Strict type checks over app/.
typecheck:
    mypy

# Tools the benchmarks compare against or drive with (Debian packages; needs root).
bench-deps:
    command -v wrk >/dev/null && command -v webhook >/dev/null || (apt-get update && apt-get install -y wrk webhook)

# What the deploy recipe tests run (Debian packages; needs root): nginx and systemd-analyze.
deploy-deps:
    command -v nginx >/dev/null && command -v systemd-analyze >/dev/null || (apt-get update && apt-get install -y nginx systemd)

# Benchmarks, each against its baseline in the same run (bench/README.md); ends with a summary.
bench: bench-deps
    python bench/ingest.py --snapshot HEAD --rounds 2
    python bench/stages.py
    python bench/dispatch.py --snapshot HEAD
    python bench/sse_fanout.py --snapshot HEAD
    python bench/sentry_overhead.py --snapshot HEAD
    python bench/scaling.py --snapshot HEAD
    python bench/spawn_cost.py
    python bench/summary.py

# Drills: kill -9 under load, two hosts on PostgreSQL, a full disk, an output flood, a held
# write lock, duplicate storm and graceful restart, bad-input sweep, malformed HTTP.
drills:
    python bench/drills/kill9_under_load.py --deliveries 2000 --kills 2
    python bench/drills/kill9_under_load.py --deliveries 1000 --kills 2 --target engine --command-seconds 0.2
    python bench/drills/two_hosts.py --deliveries 2000 --kills 2
    python bench/drills/disk_full.py
    python bench/drills/output_flood.py
    python bench/drills/lock_holder.py
    python -m pytest -q tests/test_storm_e2e.py tests/test_engine_e2e.py tests/test_properties.py
    pip install -q -e '.[bench]'
    python bench/drills/schemathesis_sweep.py --max-time 60
    python bench/drills/malformed_http.py

# Everything CI runs: lint, types, tests.
check: lint typecheck test

# Apply pending migrations.
migrate:
    hookrunner migrate

# Create migrations/NNNN_NAME.sql with the next number.
new-migration NAME:
    #!/usr/bin/env python3
    import pathlib, re, sys
    name = "{{NAME}}"
    if not re.fullmatch(r"[a-z0-9_]+", name):
        sys.exit("migration names are lower_snake_case")
    folder = pathlib.Path("migrations")
    number = max((int(p.name[:4]) for p in folder.glob("[0-9][0-9][0-9][0-9]_*.sql")), default=0) + 1
    path = folder / f"{number:04d}_{name}.sql"
    path.write_text(f"-- {number:04d} {name}: immutable once landed. No BEGIN/COMMIT.\n")
    print(path)
