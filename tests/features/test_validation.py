"""Every validation rule, each with a broken file: the error names file, column, rule, rows."""

from __future__ import annotations

import pandas as pd
import pytest

from salespilot.features.loader import load_history
from salespilot.features.validation import HistoryValidationError, Problem

from .history_files import NOW, VALID, edit, write_history


def problems(folder, now=NOW) -> list[Problem]:
    with pytest.raises(HistoryValidationError) as err:
        load_history(folder, now=now)
    assert isinstance(err.value, ValueError)
    return err.value.problems


def only(folder, now=NOW) -> tuple[Problem, str]:
    """The single problem of a folder broken in one place, and the readable report."""
    with pytest.raises(HistoryValidationError) as err:
        load_history(folder, now=now)
    assert len(err.value.problems) == 1, str(err.value)
    return err.value.problems[0], str(err.value)


# -- files and tables ---------------------------------------------------------------------------


def test_missing_required_table_names_what_to_add(tmp_path):
    p, text = only(write_history(tmp_path, accounts=None))
    assert (p.rule, p.table, p.file) == ("missing_table", "accounts", "accounts.csv")
    assert "accounts.csv" in text and "account_id" in text and "[missing_table]" in text


def test_misspelt_required_table_file_is_pointed_out(tmp_path):
    d = write_history(tmp_path, reps=None)
    (d / "rep.csv").write_text(VALID["reps"])
    p, text = only(d)
    assert (p.rule, p.table, p.file) == ("missing_table", "reps", "rep.csv")
    assert "rename it to 'reps.csv'" in text


def test_misspelt_optional_table_file_is_an_error(tmp_path):
    d = write_history(tmp_path, activities=None)
    (d / "activites.parquet").write_bytes(b"")
    p, text = only(d)
    assert (p.rule, p.table, p.file) == ("misspelt_table", "activities", "activites.parquet")
    assert "activities.csv" in text


def test_unrelated_files_are_ignored(valid_dir):
    (valid_dir / "README.txt").write_text("hello")
    (valid_dir / "notes.csv").write_text("a,b\n1,2\n")
    (valid_dir / "truth").mkdir()
    (valid_dir / "truth" / "opportunities.csv").write_text("x\n")
    assert len(load_history(valid_dir, now=NOW).reps) == 3


def test_same_table_as_csv_and_parquet_is_an_error(valid_dir):
    pd.DataFrame({"rep_id": ["r1"]}).to_parquet(valid_dir / "reps.parquet")
    p, text = only(valid_dir)
    assert (p.rule, p.table) == ("duplicate_file", "reps")
    assert "reps.csv and reps.parquet" in text


def test_unreadable_parquet(valid_dir):
    (valid_dir / "contacts.csv").unlink()
    (valid_dir / "contacts.parquet").write_bytes(b"not parquet at all")
    p, _ = only(valid_dir)
    assert (p.rule, p.file) == ("unreadable_file", "contacts.parquet")


def test_empty_csv_file(tmp_path):
    p, text = only(write_history(tmp_path, targets=""))
    assert (p.rule, p.file) == ("unreadable_file", "targets.csv")
    assert "header" in text


def test_semicolon_separated_file_is_explained(tmp_path):
    p, text = only(write_history(tmp_path, reps=VALID["reps"].replace(",", ";")))
    assert (p.rule, p.file) == ("unreadable_file", "reps.csv")
    assert "comma-separated" in text


def test_duplicate_column_in_header(tmp_path):
    p, _ = only(write_history(tmp_path, contacts=edit("contacts", "role,timezone", "role,role")))
    assert (p.rule, p.column, p.file) == ("duplicate_column", "role", "contacts.csv")


def test_line_with_wrong_number_of_fields(tmp_path):
    broken = edit("stage_changes", "o1,2025-04-10,demo", "o1,2025-04-10,demo,oops")
    p, text = only(write_history(tmp_path, stage_changes=broken))
    assert (p.rule, p.file, p.rows) == ("bad_row", "stage_changes.csv", (3,))
    assert "line 3" in text and "oops" in text


def test_empty_lines_are_skipped_and_line_numbers_stay_true(tmp_path):
    reps = edit("reps", "r3,Cy,South,APAC,,2025-02-01", "\n\nr3,Cy,South,APAC,,2025-31-01") + "\n\n"
    p, text = only(write_history(tmp_path, reps=reps))
    assert (p.rule, p.rows) == ("unparseable_timestamp", (6,))
    assert "line 6: rep_id='r3', hired_at='2025-31-01'" in text  # 2 empty lines before


# -- columns ------------------------------------------------------------------------------------


def test_misspelt_column_suggests_the_contract_name(tmp_path):
    opps = edit("opportunities", "owner_rep_id", "owner_repid")
    p, text = only(write_history(tmp_path, opportunities=opps))
    assert (p.rule, p.file, p.column) == ("missing_column", "opportunities.csv", "owner_rep_id")
    assert "'owner_repid'" in text and "did you mean 'owner_rep_id'" in text


def test_missing_column_without_close_match_lists_the_file_columns(tmp_path):
    subs = VALID["subscriptions"].replace(",monthly_value", ",mrr")
    p, text = only(write_history(tmp_path, subscriptions=subs))
    assert (p.rule, p.column) == ("missing_column", "monthly_value")
    assert "'mrr'" in text


def test_column_names_differing_only_in_case_are_suggested(tmp_path):
    p, text = only(write_history(tmp_path, contacts=edit("contacts", "timezone", "TimeZone")))
    assert (p.rule, p.column) == ("missing_column", "timezone")
    assert "'TimeZone'" in text


# -- values -------------------------------------------------------------------------------------


def test_empty_required_value(tmp_path):
    p, text = only(write_history(tmp_path, accounts=edit("accounts", "Globex", "")))
    assert (p.rule, p.file, p.column, p.rows) == ("empty_required", "accounts.csv", "name", (3,))
    assert "line 3" in text and "account_id='a2'" in text


def test_wrong_type_float(tmp_path):
    opps = edit("opportunities", "8000", "8k")
    p, text = only(write_history(tmp_path, opportunities=opps))
    assert (p.rule, p.column, p.rows) == ("wrong_type", "amount", (3,))
    assert "amount='8k'" in text and "opportunity_id='o2'" in text


def test_wrong_type_int_needs_whole_numbers(tmp_path):
    p, text = only(write_history(tmp_path, accounts=edit("accounts", ",250,", ",250.5,")))
    assert (p.rule, p.column, p.rows) == ("wrong_type", "employees", (2,))
    assert "whole number" in text


def test_unparseable_timestamp(tmp_path):
    acts = edit("activities", "2025-03-03T11:00:00Z", "03/03/2025 11:00")
    p, text = only(write_history(tmp_path, activities=acts))
    assert (p.rule, p.file, p.column) == ("unparseable_timestamp", "activities.csv", "occurred_at")
    assert p.rows == (3,) and "'03/03/2025 11:00'" in text and "ISO 8601" in text


def test_not_allowed_enum_value(tmp_path):
    p, text = only(write_history(tmp_path, opportunities=edit("opportunities", ",won", ",Won")))
    assert (p.rule, p.column, p.rows) == ("not_allowed", "status", (2,))
    assert "open, won, lost" in text and "'Won'" in text


def test_negative_amount(tmp_path):
    p, text = only(write_history(tmp_path, subscriptions=edit("subscriptions", "250", "-250")))
    assert "monthly_value='-250'" in text and "is negative" in text
    assert (p.rule, p.file, p.column, p.rows) == (
        "negative",
        "subscriptions.csv",
        "monthly_value",
        (3,),
    )


def test_duplicate_key(tmp_path):
    p, text = only(write_history(tmp_path, contacts=edit("contacts", "c3,", "c1,")))
    assert (p.rule, p.column, p.rows, p.count) == ("duplicate_key", "contact_id", (2, 4), 2)
    assert "line 2" in text and "line 4" in text


def test_duplicate_composite_key(tmp_path):
    targets = VALID["targets"] + "r1,2026-07-01T00:00:00Z,2026-12-31,1\n"
    p, text = only(write_history(tmp_path, targets=targets))
    assert (p.rule, p.column, p.rows) == ("duplicate_key", "rep_id, period_start", (2, 4))
    assert "(rep_id, period_start) is not unique" in text


@pytest.mark.parametrize(
    ("table", "old", "new", "column", "line"),
    [
        ("activities", ",r3,a2,c2,o2,demo", ",r7,a2,c2,o2,demo", "rep_id", 4),
        (
            "activities",
            "x2,2025-03-03T11:00:00Z,r1,a1,c1,",
            "x2,2025-03-03T11:00:00Z,r1,a1,c9,",
            "contact_id",
            3,
        ),
        ("opportunities", "o2,a2,", "o2,a8,", "account_id", 3),
        ("stage_changes", "o2,2025-09-10", "o5,2025-09-10", "opportunity_id", 5),
        ("accounts", "40,2025-01-20T08:30:00Z,r2", "40,2025-01-20T08:30:00Z,r0", "owner_rep_id", 4),
    ],
)
def test_unknown_reference(tmp_path, table, old, new, column, line):
    p, text = only(write_history(tmp_path, **{table: edit(table, old, new)}))
    assert (p.rule, p.file, p.column, p.rows) == (
        "unknown_reference",
        f"{table}.csv",
        column,
        (line,),
    )
    assert "not a" in text


def test_bad_timezone(tmp_path):
    p, text = only(write_history(tmp_path, contacts=edit("contacts", "Asia/Singapore", "GMT+8")))
    assert (p.rule, p.file, p.column, p.rows) == ("bad_timezone", "contacts.csv", "timezone", (3,))
    assert "'GMT+8'" in text and "IANA" in text


def test_closed_deal_without_date(tmp_path):
    opps = edit("opportunities", ",2026-01-20T16:00:00-05:00,lost", ",,lost")
    p, text = only(write_history(tmp_path, opportunities=opps))
    assert (p.rule, p.column, p.rows) == ("closed_without_date", "closed_at", (4,))
    assert "status='lost'" in text


def test_open_deal_with_close_date(tmp_path):
    opps = edit("opportunities", "2026-08-31,,open", "2026-08-31,2026-01-01,open")
    p, text = only(write_history(tmp_path, opportunities=opps))
    assert (p.rule, p.column, p.rows) == ("open_with_close_date", "closed_at", (3,))
    assert "status='open'" in text and "closed_at='2026-01-01'" in text


def test_closed_before_created(tmp_path):
    opps = edit("opportunities", "2025-06-15,won", "2025-02-15,won")
    p, text = only(write_history(tmp_path, opportunities=opps))
    assert (p.rule, p.column, p.rows) == ("closed_before_created", "closed_at", (2,))
    assert "created_at='2025-03-01'" in text and "closed_at='2025-02-15'" in text


def test_end_before_start(tmp_path):
    p, _ = only(write_history(tmp_path, reps=edit("reps", "2026-05-31", "2023-05-31")))
    assert (p.rule, p.file, p.column, p.rows) == ("end_before_start", "reps.csv", "left_at", (3,))


def test_future_timestamp(tmp_path):
    acts = edit("activities", "2026-06-01T12:00:00Z", "2026-07-02T12:00:00Z")
    p, text = only(write_history(tmp_path, activities=acts))
    assert (p.rule, p.column, p.rows) == ("future_timestamp", "occurred_at", (6,))
    assert "2026-07-01" in text


def test_planned_dates_may_lie_in_the_future(valid_dir):
    # expected_close_at 2026-08-31 and the target periods are after NOW: no problem
    assert load_history(valid_dir, now=NOW).targets is not None


# -- reporting ----------------------------------------------------------------------------------


def test_all_problems_of_a_file_are_reported_together(tmp_path):
    acts = VALID["activities"]
    acts = acts.replace("call,outbound,connected,300", "fax,outbound,connected,-3")
    acts = acts.replace("2025-09-11T09:00:00+08:00", "yesterday")
    acts = acts.replace("x2,", "x1,")
    found = problems(write_history(tmp_path, activities=acts))
    assert {(p.rule, p.column) for p in found} == {
        ("not_allowed", "channel"),
        ("negative", "duration_s"),
        ("unparseable_timestamp", "occurred_at"),
        ("duplicate_key", "activity_id"),
    }
    assert all(p.file == "activities.csv" for p in found)


def test_problems_of_all_files_are_reported_together(tmp_path):
    d = write_history(
        tmp_path,
        reps=edit("reps", "2024-01-15", "15.01.2024"),
        accounts=edit("accounts", "owner_rep_id", "owner"),
        contacts=edit("contacts", "influencer", "champion"),
        subscriptions=None,
    )
    (d / "subscriptions.parquet").write_bytes(b"junk")
    with pytest.raises(HistoryValidationError) as err:
        load_history(d, now=NOW)
    assert sorted(err.value.rules) == sorted(
        ["unreadable_file", "unparseable_timestamp", "missing_column", "not_allowed"]
    )
    report = str(err.value)
    assert "4 problems in 4 files" in report
    for name in ("reps.csv", "accounts.csv", "contacts.csv", "subscriptions.parquet"):
        assert name in report


def test_many_offending_rows_show_the_first_five_and_the_count(tmp_path):
    rows = "".join(f"x{i},2025-05-01,r1,a1,c1,o1,call,outbound,maybe,\n" for i in range(10, 22))
    p, text = only(write_history(tmp_path, activities=VALID["activities"] + rows))
    assert p.count == 12 and p.rows == (7, 8, 9, 10, 11)
    assert "... and 7 more" in text and "12 rows" in text


def test_parquet_problems_give_0_based_row_indices(valid_dir):
    acts = pd.read_csv(valid_dir / "activities.csv", dtype=str, keep_default_na=False)
    acts.loc[3, "direction"] = "upward"
    (valid_dir / "activities.csv").unlink()
    acts.to_parquet(valid_dir / "activities.parquet", index=False)
    p, text = only(valid_dir)
    assert (p.rule, p.file, p.rows, p.row_kind) == (
        "not_allowed",
        "activities.parquet",
        (3,),
        "row",
    )
    assert "row index 3" in text


def test_wrong_type_in_parquet_column(valid_dir):
    reps = pd.read_csv(valid_dir / "reps.csv", dtype=str, keep_default_na=False)
    reps["hired_at"] = [1, 2, 3]  # epoch numbers are not timestamps of the contract
    (valid_dir / "reps.csv").unlink()
    reps.to_parquet(valid_dir / "reps.parquet", index=False)
    p, _ = only(valid_dir)
    assert (p.rule, p.column, p.rows, p.count) == (
        "unparseable_timestamp",
        "hired_at",
        (0, 1, 2),
        3,
    )


def test_error_to_dict_is_structured(tmp_path):
    with pytest.raises(HistoryValidationError) as err:
        load_history(write_history(tmp_path, accounts=edit("accounts", "Globex", "")), now=NOW)
    d = err.value.to_dict()
    assert d["valid"] is False
    assert d["problems"] == [
        {
            "rule": "empty_required",
            "message": "1 row: name is empty",
            "file": "accounts.csv",
            "table": "accounts",
            "column": "name",
            "count": 1,
            "rows": [3],
            "row_kind": "line",
            "examples": [{"account_id": "a2", "name": None}],
        }
    ]
