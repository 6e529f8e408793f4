#!/usr/bin/env bash
# What the test suite needs beyond PyPI, installed from Debian packages when absent (idempotent):
# - PostgreSQL server binaries for the import tests (tests/features/test_import_postgres.py
#   starts a throw-away server with them);
# - Chromium for the browser tests of the pages (tests/web/), driven by Playwright through
#   its executable_path (Playwright's own browser download is never used).
set -euo pipefail
need=()
if ! command -v pg_ctl >/dev/null 2>&1 && ! compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; then
    need+=(postgresql)
fi
if [ ! -x /usr/bin/chromium ]; then
    need+=(chromium)
fi
if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "test-setup: installing ${need[*]} (Debian packages) for the import and browser tests" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
    echo "test-setup: ${need[*]} not found and not root; the tests that need them will be" \
         "skipped (CI=true makes them fail instead)" >&2
fi
