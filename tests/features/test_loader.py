"""Loading a valid history folder: typing, formats, optional tables, summary, CLI."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from salespilot.cli import app
from salespilot.features.history import History
from salespilot.features.loader import find_all_problems, load_history, summarize_history
from salespilot.features.pit import observed_end
from salespilot.features.schema import MODEL_TABLES, TABLES, models_skipped
from salespilot.features.validation import HistoryValidationError

from .history_files import NOW, VALID, edit, write_history


def test_valid_folder_loads_typed_frames(valid_dir):
    h = load_history(valid_dir, now=NOW)
    assert isinstance(h, History)
    assert h.present_tables == list(TABLES)
    for name, schema in TABLES.items():
        df = h.table(name)
        assert list(df.columns) == list(schema.column_names)
        for col in schema.columns:
            dtype = df[col.name].dtype
            if col.kind in ("id", "text", "enum"):
                assert pd.api.types.is_string_dtype(dtype), (name, col.name, dtype)
            elif col.kind == "timestamp":
                assert dtype == "datetime64[ns]", (name, col.name, dtype)
            elif col.kind == "float":
                assert dtype == "float64"
    assert h.accounts["employees"].dtype == "Int64"
    assert h.accounts["employees"].isna().tolist() == [False, True, False]


def test_timestamps_are_converted_to_naive_utc(valid_dir):
    h = load_history(valid_dir, now=NOW)
    reps = h.reps.set_index("rep_id")
    assert reps.loc["r2", "hired_at"] == pd.Timestamp("2024-03-01 07:00")  # +02:00 -> UTC
    assert reps.loc["r1", "hired_at"] == pd.Timestamp("2024-01-15")  # naive = UTC
    assert pd.isna(reps.loc["r1", "left_at"])
    opps = h.opportunities.set_index("opportunity_id")
    assert opps.loc["o3", "closed_at"] == pd.Timestamp("2026-01-20 21:00")  # -05:00 -> UTC
    acts = h.activities.set_index("activity_id")
    assert acts.loc["x3", "occurred_at"] == pd.Timestamp("2025-09-11 01:00")


def test_ids_stay_text_with_leading_zeros(tmp_path):
    d = write_history(
        tmp_path,
        reps=edit("reps", "r1,Ann", "007,Ann"),
        accounts=edit("accounts", "250,2024-02-01,r1", "250,2024-02-01,007"),
        opportunities=edit("opportunities", "a1,r1,", "a1,007,"),
        activities=VALID["activities"].replace(",r1,", ",007,"),
        targets=edit("targets", "r1,", "007,"),
    )
    h = load_history(d, now=NOW)
    assert "007" in h.reps["rep_id"].tolist()
    assert h.opportunities["owner_rep_id"].iloc[0] == "007"


def test_csv_and_parquet_load_identically(valid_dir, tmp_path):
    from_csv = load_history(valid_dir, now=NOW)
    pq = tmp_path / "pq"
    pq.mkdir()
    for name in TABLES:
        raw = pd.read_csv(valid_dir / f"{name}.csv", dtype=str, keep_default_na=False)
        raw = raw.replace("", None)
        raw.to_parquet(pq / f"{name}.parquet", index=False)
    from_pq = load_history(pq, now=NOW)
    for name in TABLES:
        pd.testing.assert_frame_equal(from_csv.table(name), from_pq.table(name))
    assert from_csv.content_hash() == from_pq.content_hash()
    # A typed Parquet copy (real datetimes, floats) loads the same too.
    typed = tmp_path / "typed"
    typed.mkdir()
    for name in TABLES:
        from_csv.table(name).to_parquet(typed / f"{name}.parquet", index=False)
    assert load_history(typed, now=NOW).content_hash() == from_csv.content_hash()


def test_parquet_with_tz_aware_timestamps_converts_to_utc(valid_dir, tmp_path):
    h = load_history(valid_dir, now=NOW)
    folder = tmp_path / "tz"
    folder.mkdir()
    for name in h.present_tables:
        df = h.table(name).copy()
        for col in TABLES[name].timestamp_columns:
            df[col] = df[col].dt.tz_localize("UTC").dt.tz_convert("Asia/Tokyo")
        df.to_parquet(folder / f"{name}.parquet", index=False)
    again = load_history(folder, now=NOW)
    assert again.content_hash() == h.content_hash()
    assert again.reps["hired_at"].dtype == "datetime64[ns]"


def test_extra_columns_are_kept(tmp_path):
    accounts = VALID["accounts"].replace("owner_rep_id\n", "owner_rep_id,crm_url\n")
    accounts = accounts.replace(",r1\n", ",r1,http://x/1\n").replace(",r3\n", ",r3,\n")
    accounts = accounts.replace(",r2\n", ",r2,http://x/3\n")
    h = load_history(write_history(tmp_path, accounts=accounts), now=NOW)
    assert list(h.accounts.columns)[-1] == "crm_url"
    assert h.accounts["crm_url"].tolist()[0] == "http://x/1"
    assert pd.isna(h.accounts["crm_url"].iloc[1])


def test_only_required_tables_is_fine(tmp_path):
    optional = {t: None for t in TABLES if not TABLES[t].required}
    h = load_history(write_history(tmp_path, **optional), now=NOW)
    assert h.present_tables == ["reps", "accounts", "opportunities"]
    assert h.activities is None and h.subscriptions is None
    skipped = models_skipped(h)
    assert set(skipped) == {"churn_risk", "contact_time"}
    assert "subscriptions.csv" in skipped["churn_risk"]
    assert "contacts.csv" in skipped["contact_time"] and "activities.csv" in skipped["contact_time"]


def test_references_to_absent_optional_tables_are_not_checked(tmp_path):
    # activities name contacts, but without contacts.csv there is nothing to check against
    h = load_history(write_history(tmp_path, contacts=None), now=NOW)
    assert h.contacts is None and len(h.activities) == 5


def test_summary_counts(valid_dir):
    s = summarize_history(load_history(valid_dir, now=NOW))
    assert s["tables"]["activities"]["rows"] == 5
    assert s["tables"]["activities"]["file"] == "activities.csv"
    assert s["tables"]["targets"]["rows"] == 2
    assert s["deals"]["open"] == 1 and s["deals"]["won"] == 1 and s["deals"]["lost"] == 1
    # history ends at the last event (2026-06-01 12:00): s1 runs, s2 ended 2025-12-31
    assert s["date_range"]["end"] == "2026-06-01T12:00:00"
    assert s["date_range"]["start"] == "2024-01-15T00:00:00"
    assert s["active_subscriptions"] == 1
    assert s["reps_active"] == 2  # r2 left 2026-05-31
    assert s["models_available"] == list(MODEL_TABLES)
    assert s["models_skipped"] == {}
    json.dumps(s)


def test_end_ignores_planned_dates(valid_dir):
    h = load_history(valid_dir, now=NOW)
    # expected_close_at 2026-08-31 and target periods lie after the last event
    assert observed_end(h) == pd.Timestamp("2026-06-01 12:00")


def test_now_defaults_to_the_clock_and_accepts_aware_times(valid_dir):
    load_history(valid_dir)  # real "now" is after every event here
    with pytest.raises(HistoryValidationError) as err:
        load_history(valid_dir, now="2026-06-01T13:00:00+02:00")  # 11:00 UTC
    assert err.value.rules == ["future_timestamp"]


# -- CLI --------------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_validate_valid_folder_exits_0(valid_dir):
    result = runner.invoke(app, ["validate", str(valid_dir), "--now", "2026-07-01"])
    assert result.exit_code == 0, result.output
    assert "valid history" in result.output
    assert "activities" in result.output and "contact_time can be trained" in result.output


def test_cli_validate_broken_folder_exits_1(tmp_path):
    d = write_history(tmp_path, activities=edit("activities", "outbound,held", "sideways,held"))
    result = runner.invoke(app, ["validate", str(d), "--now", "2026-07-01"])
    assert result.exit_code == 1
    assert "activities.csv" in result.output and "direction" in result.output
    assert "not_allowed" in result.output and "line 4" in result.output
    assert "Traceback" not in result.output


def test_cli_validate_json(valid_dir, tmp_path):
    ok = runner.invoke(app, ["validate", str(valid_dir), "--json", "--now", "2026-07-01"])
    assert ok.exit_code == 0
    body = json.loads(ok.stdout)
    assert body["valid"] is True and body["summary"]["deals"]["won"] == 1
    d = write_history(tmp_path / "b", reps=None)
    bad = runner.invoke(app, ["validate", str(d), "--json"])
    assert bad.exit_code == 1
    body = json.loads(bad.stdout)
    assert body["valid"] is False
    assert [p["rule"] for p in body["problems"]] == ["missing_table"]


def test_cli_validate_defaults_to_the_data_dir_setting(valid_dir, monkeypatch):
    monkeypatch.setenv("SALESPILOT_DATA_DIR", str(valid_dir))
    result = runner.invoke(app, ["validate", "--now", "2026-07-01"])
    assert result.exit_code == 0, result.output
    assert str(valid_dir) in result.output.replace("\n", "")


def test_cli_validate_missing_folder_exits_1(tmp_path):
    result = runner.invoke(app, ["validate", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "missing_folder" in result.output


def test_header_only_files_load_empty_and_summarize(tmp_path):
    d = write_history(tmp_path, **{t: VALID[t].splitlines()[0] + "\n" for t in VALID})
    h = load_history(d, now=NOW)
    assert len(h.activities) == 0 and h.activities["occurred_at"].dtype == "datetime64[ns]"
    s = summarize_history(h)
    assert s["date_range"] == {"start": None, "end": None}
    assert s["deals"]["open"] == 0 and s["active_subscriptions"] == 0
    assert runner.invoke(app, ["validate", str(d), "--now", "2026-07-01"]).exit_code == 0


def test_windows_line_endings_and_a_byte_order_mark(tmp_path):
    reps = "\ufeff" + VALID["reps"].replace("\n", "\r\n")
    h = load_history(write_history(tmp_path, reps=reps), now=NOW)
    assert h.reps["rep_id"].tolist() == ["r1", "r2", "r3"]
    assert h.reps["left_at"].notna().sum() == 1


def test_formats_can_be_mixed_and_numeric_parquet_ids_become_text(tmp_path):
    d = write_history(
        tmp_path,
        reps=VALID["reps"].replace("r1,", "1,").replace("r2,", "2,").replace("r3,", "3,"),
        accounts=VALID["accounts"]
        .replace(",r1\n", ",1\n")
        .replace(",r2\n", ",2\n")
        .replace(",r3\n", ",3\n"),
        opportunities=VALID["opportunities"]
        .replace(",r1,", ",1,")
        .replace(",r2,", ",2,")
        .replace(",r3,", ",3,"),
        activities=None,
        targets=None,
    )
    reps = pd.read_csv(d / "reps.csv", dtype={"rep_id": "int64"}, keep_default_na=False)
    (d / "reps.csv").unlink()
    reps.replace("", None).to_parquet(d / "reps.parquet", index=False)
    h = load_history(d, now=NOW)
    assert h.reps["rep_id"].tolist() == ["1", "2", "3"]
    assert pd.api.types.is_string_dtype(h.reps["rep_id"])


def test_a_whole_number_beyond_2_to_the_53_is_too_large_not_a_crash(tmp_path):
    folder = write_history(
        tmp_path / "h",
        accounts=edit("accounts", "EMEA,250,", "EMEA,99999999999999999999999,"),
    )
    (problem,) = find_all_problems(folder, now=NOW)
    assert (problem.rule, problem.column, problem.rows) == ("too_large", "employees", (2,))
    assert problem.examples == ({"account_id": "a1", "employees": "99999999999999999999999"},)
    # 2**53 itself is still a whole number read exactly
    ok = write_history(
        tmp_path / "ok", accounts=edit("accounts", "EMEA,250,", "EMEA,9007199254740992,")
    )
    assert find_all_problems(ok, now=NOW) == []


def test_a_nul_byte_in_any_cell_is_refused_with_its_own_rule(tmp_path):
    """A NUL byte in a text cell (contract or extra column) is refused: ``nul_byte``, the
    line and the column, not passed on into ids and names."""
    folder = write_history(
        tmp_path / "h",
        accounts=edit("accounts", "a1,Acme,", "a1,Ac\x00me,"),
        reps=edit("reps", "r3,Cy,", "r3,C\x00y,"),
    )
    problems = find_all_problems(folder, now=NOW)
    nul = sorted((p.table, p.column, p.rows) for p in problems if p.rule == "nul_byte")
    assert nul == [("accounts", "name", (2,)), ("reps", "name", (4,))]
    assert {p.rule for p in problems} == {"nul_byte"}
    with pytest.raises(HistoryValidationError) as err:
        load_history(folder, now=NOW)
    assert "[nul_byte]" in str(err.value) and "NUL byte" in str(err.value)
    (tmp_path / "p").mkdir()
    for name in ("reps", "accounts", "opportunities"):
        df = pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False)
        df.to_parquet(tmp_path / "p" / f"{name}.parquet")
    in_parquet = find_all_problems(tmp_path / "p", now=NOW)
    assert sorted((p.table, p.rows, p.row_kind) for p in in_parquet if p.rule == "nul_byte") == [
        ("accounts", (0,), "row"),
        ("reps", (2,), "row"),
    ]


def test_reading_and_the_validation_rules_are_separate_rooms():
    """Reading files (finding, parsing, typing) and the contract's rules live in their own
    modules; the rules read no file, and every rule id the docs list is raised in one of
    the loader's three modules (the time-order rules named in the schema)."""
    import ast
    import re
    from pathlib import Path

    import salespilot.features.validation as validation
    from salespilot.features import loader, reading, schema, validation_rules

    def imported(module) -> set[str]:
        tree = ast.parse(Path(module.__file__).read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        return names | {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}

    assert not {"csv", "gzip", "pyarrow.csv"} & imported(validation_rules)
    assert not [n for n in dir(reading) if n.startswith("check_")]
    assert {"check_rows", "check_references", "check_deals", "check_time_order"} <= set(
        dir(validation_rules)
    )
    rules = set(re.findall(r"^([a-z_]+) {2,}", validation.__doc__, flags=re.M)) - {"rule"}
    code = "".join(
        Path(m.__file__).read_text() for m in (loader, reading, validation_rules, schema)
    )
    assert rules and not [r for r in rules if f'"{r}"' not in code]
