"""SQL sources: a real PostgreSQL server, a history loaded into it and imported back exactly.

The server is a throw-away cluster started from the PostgreSQL binaries (Debian's
``postgresql`` package; ``scripts/test-setup.sh`` installs it on a fresh machine), and the
test database is created and dropped by pytest-postgresql's ``DatabaseJanitor``. PostgreSQL
refuses to run as root, so as root the cluster runs as the ``postgres`` system user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from salespilot.features.history import History
from salespilot.features.loader import load_history
from salespilot.features.mapping import MappingError, SourceError, import_history, parse_mapping
from salespilot.features.schema import TABLES


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_version)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).resolve().parent if on_path else None


def _version(path: str) -> int:
    try:
        return int(Path(path).parts[-3])
    except ValueError:
        return 0


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A running PostgreSQL server (TCP on 127.0.0.1) and a fresh database on it."""
    from port_for import select_random
    from pytest_postgresql.janitor import DatabaseJanitor

    bin_dir = _pg_bin()
    if bin_dir is None:
        missing = "PostgreSQL server binaries not found: run scripts/test-setup.sh"
        if os.environ.get("CI"):  # CI installs them (scripts/test-setup.sh): never skip there
            pytest.fail(missing)
        pytest.skip(missing)
    as_root = os.geteuid() == 0
    run_as: list[str] = ["runuser", "-u", "postgres", "--"] if as_root else []
    base = Path(tempfile.mkdtemp(prefix="salespilot-pg-"))
    if as_root:
        pw = pwd.getpwnam("postgres")
        os.chown(base, pw.pw_uid, pw.pw_gid)
    data, port = base / "data", select_random()
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}

    def run(*args: str) -> None:
        subprocess.run([*run_as, *args], check=True, capture_output=True, env=env, cwd=base)

    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(
        str(bin_dir / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        options,
        "-l",
        str(base / "log"),
        "-w",
        "start",
    )
    try:
        janitor = DatabaseJanitor(
            user="postgres", host="127.0.0.1", port=port, dbname="salespilot_crm", version=None
        )
        with janitor:
            yield f"postgresql://postgres@127.0.0.1:{port}/salespilot_crm"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


def _to_database(history: History, url: str) -> list[str]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as con:
        for name in history.present_tables:
            history.table(name).to_sql(name, con, index=False, if_exists="replace")
    engine.dispose()
    return history.present_tables


def _assert_same(imported: History, original: History) -> None:
    assert imported.present_tables == original.present_tables
    for name in original.present_tables:
        # A SQL table has no row order: compare in key order.
        key = list(TABLES[name].key)
        a, b = (h.table(name).sort_values(key).reset_index(drop=True) for h in (imported, original))
        pd.testing.assert_frame_equal(a, b, check_dtype=True, obj=name)
    assert imported.content_hash() == original.content_hash()


@pytest.fixture(scope="module")
def small_history(tmp_path_factory) -> History:
    """A small generated history (every table, a few thousand rows): fast to load into SQL."""
    from salespilot.features.demo import generate_history

    out = tmp_path_factory.mktemp("small_history")
    generate_history(out, reps=4, months=3, seed=3, end=pd.Timestamp("2026-06-30"))
    return load_history(out)


@pytest.fixture(scope="module")
def loaded_db(postgres_url, small_history) -> list[str]:
    return _to_database(small_history, postgres_url)


def test_a_history_round_trips_through_postgresql_exactly(
    postgres_url, small_history, loaded_db, tmp_path
):
    original, tables = small_history, loaded_db
    identity = parse_mapping({"tables": {t: {"source": t, "keep_extra": True} for t in tables}})
    out = tmp_path / "imported"
    result = import_history(identity, postgres_url, out)
    assert result.rows == {t: len(original.table(t)) for t in tables}
    _assert_same(load_history(out), original)


def test_sql_queries_filters_and_bad_names(postgres_url, small_history, loaded_db, tmp_path):
    original = small_history
    # A query part: the won deals only, with a renamed column read back through a rename.
    mapping = {
        "tables": {
            "reps": {"source": "reps"},
            "accounts": {"source": "accounts"},
            "opportunities": {
                "query": "SELECT *, owner_rep_id AS seller FROM opportunities WHERE status = 'won'",
                "columns": {"owner_rep_id": "seller"},
            },
        }
    }
    out = tmp_path / "won"
    import_history(parse_mapping(mapping), postgres_url, out)
    won = load_history(out).opportunities
    expected = original.opportunities[original.opportunities["status"] == "won"]
    assert sorted(won["opportunity_id"]) == sorted(expected["opportunity_id"])
    typo = {"tables": {**mapping["tables"], "reps": {"source": "rep"}}}
    with pytest.raises(SourceError, match="no table 'rep'; did you mean 'reps'"):
        import_history(parse_mapping(typo), postgres_url, tmp_path / "typo")
    misspelt = {
        "tables": {**mapping["tables"], "reps": {"source": "reps", "columns": {"name": "nmae"}}}
    }
    with pytest.raises(MappingError, match="no source column 'nmae'"):
        import_history(parse_mapping(misspelt), postgres_url, tmp_path / "typo")


def test_a_query_cannot_write_to_postgresql(postgres_url, loaded_db):
    """A mapping's query runs read-only: a statement after the SELECT is refused before it
    runs, and a write hidden in one SELECT (a writable CTE) is refused by the server."""
    from salespilot.features.mapping.sources import open_source

    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as con:
        before = con.execute(sa.text("SELECT count(*) FROM reps")).scalar_one()
    src = open_source(postgres_url)
    try:
        with pytest.raises(SourceError, match="one SELECT"):
            src.query("SELECT 1; INSERT INTO reps (rep_id) VALUES ('X1'); COMMIT")
        cte = "WITH w AS (INSERT INTO reps (rep_id) VALUES ('X2') RETURNING rep_id) SELECT * FROM w"
        with pytest.raises(SourceError, match="read-only transaction"):
            src.query(cte)
    finally:
        src.close()
    with engine.connect() as con:
        assert con.execute(sa.text("SELECT count(*) FROM reps")).scalar_one() == before
    engine.dispose()
