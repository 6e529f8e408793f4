#!/usr/bin/env bash
# What the test suite needs beyond PyPI: PostgreSQL server binaries for the import tests
# (tests/features/test_import_postgres.py starts a throw-away server with them).
# Debian/Ubuntu as root: installs the `postgresql` package when pg_ctl is absent. Idempotent.
set -euo pipefail
if command -v pg_ctl >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "test-setup: installing PostgreSQL (Debian package 'postgresql') for the import tests" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
else
    echo "test-setup: PostgreSQL not found and not root; the PostgreSQL import tests will be" \
         "skipped (install the 'postgresql' package to run them)" >&2
fi
