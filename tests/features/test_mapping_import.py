"""import_history end to end on a small export: validation, rejects, custom fields, the CLI."""

from __future__ import annotations

import copy
import io
import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from salespilot.cli import app
from salespilot.features.custom_fields import read_custom_fields
from salespilot.features.loader import load_history
from salespilot.features.mapping import ImportValidationError, import_history, parse_mapping

from .test_mapping import EXPORT_MAPPING, _export, _write


def _broken_export(tmp_path):
    src = _export(tmp_path)
    # D4's rep is not in the team file; D5 is Won without a close date.
    with (src / "deals.csv").open("a") as f:
        f.write("D4,Nobody Known,MG Special,Won,01/03/2017,02/03/2017,Acme\n")
        f.write("D5,Ann Lee,MG Special,Won,01/03/2017,,Acme\n")
    return src


def test_a_clean_export_imports_and_loads(tmp_path):
    out = tmp_path / "history"
    result = import_history(parse_mapping(EXPORT_MAPPING), _export(tmp_path), out)
    assert result.rows == {"reps": 2, "accounts": 2, "opportunities": 3}
    history = load_history(out)
    assert history.opportunities.set_index("opportunity_id").loc["D1", "amount"] == 4821.0
    assert read_custom_fields(out).categorical == {"opportunities": ("stage",)}
    # no staging folder is left next to the output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "history"]


def test_broken_rows_stop_the_import_with_the_validate_report(tmp_path):
    out = tmp_path / "history"
    with pytest.raises(ImportValidationError) as info:
        import_history(parse_mapping(EXPORT_MAPPING), _broken_export(tmp_path), out)
    rules = sorted(p.rule for p in info.value.problems)
    assert rules == ["closed_without_date", "unknown_reference"]
    report = str(info.value)
    assert "opportunities.csv, column owner_rep_id [unknown_reference]" in report
    assert "line 5: opportunity_id='D4', owner_rep_id='nobody-known'" in report
    # ... and where the row is in the user's own export
    assert "opportunities.csv line 5 [unknown_reference] <- deals.csv row 5" in report
    assert "--rejects" in report
    assert not out.exists()


def test_rejects_keep_the_valid_rows_and_say_why_for_each_other(tmp_path):
    out, rejects = tmp_path / "history", tmp_path / "rejects.csv"
    result = import_history(
        parse_mapping(EXPORT_MAPPING), _broken_export(tmp_path), out, rejects=rejects
    )
    assert result.rejected == 2
    assert result.rows["opportunities"] == 3
    table = pd.read_csv(rejects).sort_values("source_row")
    assert list(table["rule"]) == ["unknown_reference", "closed_without_date"]
    assert list(table["source"]) == ["deals.csv", "deals.csv"]
    assert list(table["source_row"]) == [5, 6]
    assert table["message"].iloc[1] == "a won or lost deal has no closed_at"
    assert json.loads(table["record"].iloc[0])["opportunity_id"] == "D4"
    assert list(load_history(out).opportunities["opportunity_id"]) == ["D1", "D2", "D3"]


def test_a_row_breaking_two_rules_is_one_rejected_row_with_both_reasons(tmp_path):
    src = _broken_export(tmp_path)
    with (src / "deals.csv").open("a") as f:  # an unknown rep and won without a close date
        f.write("D6,Nobody Known,MG Special,Won,01/03/2017,,Acme\n")
    rows_in = len(pd.read_csv(src / "deals.csv"))
    out, rejects = tmp_path / "history", tmp_path / "rejects.csv"
    result = import_history(parse_mapping(EXPORT_MAPPING), src, out, rejects=rejects)
    table = pd.read_csv(rejects)
    assert rows_in == result.rows["opportunities"] + result.rejected == 3 + 3
    assert len(table) == result.rejected and table["source_row"].is_unique
    both = table.set_index("source_row").loc[7]
    assert set(both["rule"].split("; ")) == {"unknown_reference", "closed_without_date"}
    assert "no closed_at" in both["message"]
    assert result.rejected_by_rule == {
        "opportunities.closed_without_date": 2,
        "opportunities.unknown_reference": 2,
    }


def test_a_rejected_account_takes_its_deals_with_it(tmp_path):
    src = _export(tmp_path)
    mapping = copy.deepcopy(EXPORT_MAPPING)
    mapping["tables"]["accounts"]["parts"][0]["rows"] = [{"client": "Acme", "when": "someday"}]
    mapping["tables"]["accounts"]["parts"][0]["columns"]["created_at"] = "when"
    result = import_history(parse_mapping(mapping), src, tmp_path / "h", rejects=tmp_path / "r.csv")
    assert result.rejected_by_rule == {
        "accounts.unparseable_timestamp": 1,
        "opportunities.unknown_reference": 2,
    }
    assert result.rows == {"reps": 2, "accounts": 1, "opportunities": 1}


def test_a_missing_column_cannot_be_rejected_row_by_row(tmp_path):
    mapping = copy.deepcopy(EXPORT_MAPPING)
    del mapping["tables"]["reps"]["columns"]["region"]
    with pytest.raises(ImportValidationError, match=r"reps.csv, column region \[missing_column\]"):
        import_history(
            parse_mapping(mapping), _export(tmp_path), tmp_path / "h", rejects=tmp_path / "r.csv"
        )


def _cli_mapping(tmp_path):
    import yaml

    path = tmp_path / "map.yaml"
    path.write_text(yaml.safe_dump(EXPORT_MAPPING))
    return path


def test_cli_stops_with_exit_1_or_prints_the_rejected_count(tmp_path):
    runner = CliRunner()
    src, mapping = _broken_export(tmp_path), _cli_mapping(tmp_path)
    args = ["import", "--mapping", str(mapping), "--source", str(src), "--out", str(tmp_path / "h")]
    failed = runner.invoke(app, args)
    assert failed.exit_code == 1
    assert "[unknown_reference]" in failed.output and "Traceback" not in failed.output
    ok = runner.invoke(app, [*args, "--rejects", str(tmp_path / "r.csv")])
    assert ok.exit_code == 0, ok.output
    assert "2 rows rejected" in ok.output
    as_json = runner.invoke(app, [*args, "--rejects", str(tmp_path / "r.csv"), "--json"])
    assert json.loads(as_json.stdout)["rejected"] == 2


def test_cli_reports_a_bad_mapping_without_a_traceback(tmp_path):
    _write(tmp_path, "map.yaml", "tables:\n  reps: {source: r}\n")
    result = CliRunner().invoke(
        app,
        [
            "import",
            "-m",
            str(tmp_path / "map.yaml"),
            "-s",
            str(tmp_path),
            "-o",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 1
    assert "required tables" in result.output and "Traceback" not in result.output


def test_find_all_problems_returns_every_offending_row_not_only_the_first_five(tmp_path):
    from salespilot.features.loader import HistoryValidationError, find_all_problems

    src = _export(tmp_path)
    with (src / "deals.csv").open("a") as f:
        for i in range(7):
            f.write(f"X{i},Nobody,MG Special,Engaging,01/03/2017,,Acme\n")
    with pytest.raises(ImportValidationError) as info:
        import_history(parse_mapping(EXPORT_MAPPING), src, tmp_path / "h")
    (problem,) = info.value.problems
    assert problem.count == 7 and len(problem.rows) == 5  # the report shows the first five
    staged = tmp_path / "staged"
    result = import_history(parse_mapping(EXPORT_MAPPING), src, staged, rejects=tmp_path / "r.csv")
    assert result.rejected == 7
    # the loader's own report still stops at five; find_all_problems has them all
    opps = pd.read_csv(staged / "opportunities.csv", dtype=str)
    ghosts = opps.iloc[[0] * 7].assign(
        opportunity_id=[f"Y{i}" for i in range(7)], owner_rep_id="ghost"
    )
    pd.concat([opps, ghosts]).to_csv(staged / "opportunities.csv", index=False)
    with pytest.raises(HistoryValidationError) as loaded:
        load_history(staged)
    assert len(loaded.value.problems[0].rows) == 5
    (everything,) = find_all_problems(staged)
    assert everything.rows == tuple(range(5, 12))


def test_a_source_query_is_one_select_and_cannot_write(tmp_path):
    import sqlite3

    from salespilot.features.mapping.sources import SourceError, open_source

    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE deals (id TEXT)")
        con.execute("INSERT INTO deals VALUES ('D1')")
    src = open_source(f"sqlite:///{db}")
    try:
        assert list(src.query("SELECT id FROM deals")["id"]) == ["D1"]
        assert len(src.query("WITH d AS (SELECT id FROM deals) SELECT * FROM d")) == 1
        for sql in (
            "DROP TABLE deals",
            "SELECT 1; DROP TABLE deals",
            "INSERT INTO deals VALUES ('D2'); COMMIT",
            "DELETE FROM deals",
        ):
            with pytest.raises(SourceError, match="one SELECT"):
                src.query(sql)
    finally:
        src.close()
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT id FROM deals").fetchall() == [("D1",)]


def test_observed_until_in_the_mapping_states_the_exports_end(tmp_path):
    from salespilot.features.export_end import read_observed_until
    from salespilot.features.pit import last_event, observed_end

    src = _export(tmp_path)
    # naive: in the mapping's time zone (01:00 in Berlin in winter is midnight UTC)
    mapping = {**EXPORT_MAPPING, "timezone": "Europe/Berlin", "observed_until": "2017-12-31T01:00"}
    import_history(parse_mapping(mapping), src, tmp_path / "h")
    assert read_observed_until(tmp_path / "h") == pd.Timestamp("2017-12-31T00:00")
    history = load_history(tmp_path / "h")
    assert observed_end(history) == pd.Timestamp("2017-12-31") > last_event(history)
    # without it the end is the last event again (a re-import removes the file)
    import_history(parse_mapping(EXPORT_MAPPING), src, tmp_path / "h")
    again = load_history(tmp_path / "h")
    assert again.observed_until is None and observed_end(again) == last_event(again)
    # an event after the stated end is refused like one in the future
    early = {**EXPORT_MAPPING, "observed_until": "2017-01-01"}
    with pytest.raises(ImportValidationError, match="future"):
        import_history(parse_mapping(early), src, tmp_path / "h2")


_PARQUET = "id,agent,product,stage,engaged,closed,client\nD1,Ann Lee,GTXPro,Won,01/02/2017,,Acme\n"


def _truncated_parquet(path):
    pd.read_csv(io.StringIO(_PARQUET), dtype=str).to_parquet(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (
            b"id,agent,product,stage,engaged,closed,client\nD1,Ann Lee,GTXPro,Won,,,Acme\n"
            b'D2,"Cid Roe,MG Special,Won,,,Acme\n',
            "a quote opened on line 3 is never closed",
        ),
        (
            "id,agent,product,stage,engaged,closed,client\nD1,Ann Lée,GTXPro,Won,,,Acme\n".encode(
                "latin-1"
            ),
            "line 2 is not UTF-8 text (byte 0xe9)",
        ),
        (b"", "the file is empty (0 bytes)"),
        (bytes(range(128, 256)) * 8, "line 1 is not UTF-8 text (byte 0x80)"),
        ("parquet", "not a readable Parquet file"),
    ],
    ids=["unclosed-quote", "latin-1", "zero-bytes", "binary", "truncated-parquet"],
)
def test_an_unreadable_export_file_is_named_without_a_traceback(tmp_path, content, says):
    src = _export(tmp_path)
    mapping = copy.deepcopy(EXPORT_MAPPING)
    if content == "parquet":
        (src / "deals.csv").unlink()
        _truncated_parquet(src / "deals.parquet")
        mapping = json.loads(json.dumps(mapping).replace("deals.csv", "deals.parquet"))
    else:
        (src / "deals.csv").write_bytes(content)
    import yaml

    (tmp_path / "map.yaml").write_text(yaml.safe_dump(mapping))
    args = ["-m", str(tmp_path / "map.yaml"), "-s", str(src), "-o", str(tmp_path / "h")]
    result = CliRunner().invoke(app, ["import", *args])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    name = "deals.parquet" if content == "parquet" else "deals.csv"
    assert f"{name} [unreadable_file]" in " ".join(result.output.split())
    assert says in " ".join(result.output.split()), result.output
    as_json = CliRunner().invoke(app, ["import", *args, "--json"])
    assert as_json.exit_code == 1 and says in json.loads(as_json.stdout)["error"]
    assert not (tmp_path / "h").exists()


def test_a_huge_whole_number_is_refused_by_its_own_rule(tmp_path):
    mapping = copy.deepcopy(EXPORT_MAPPING)
    part = mapping["tables"]["accounts"]["parts"][0]
    part["columns"]["employees"] = {"constant": 99999999999999999999999}
    with pytest.raises(ImportValidationError) as info:
        import_history(parse_mapping(mapping), _export(tmp_path), tmp_path / "h")
    (problem,) = info.value.problems
    assert (problem.rule, problem.column, problem.count) == ("too_large", "employees", 1)
    assert "employees is too large (a whole number up to 9,007,199,254,740,992)" in str(info.value)
