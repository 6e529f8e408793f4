"""What real exports need from the mapping: dates with dashes in any order, other delimiters."""

from __future__ import annotations

import pandas as pd
import pytest

from salespilot.features.mapping import parse_mapping
from salespilot.features.mapping.sources import FolderSource
from salespilot.features.mapping.transform import map_tables, parse_timestamps


def _parse(values, *, date_format=None, dayfirst=False, timezone="UTC"):
    return list(
        parse_timestamps(
            pd.Series(values), date_format=date_format, dayfirst=dayfirst, timezone=timezone
        )
    )


def test_day_first_dates_with_dashes_are_dates_not_offsets():
    # "-2018" ends the value: a year, not a time-zone offset
    assert _parse(["01-02-2018", "31-12-2018 14:05"], dayfirst=True) == [
        pd.Timestamp("2018-02-01"),
        pd.Timestamp("2018-12-31 14:05"),
    ]
    assert _parse(["01-02-2018", "31-12-2018"], date_format="%d-%m-%Y") == [
        pd.Timestamp("2018-02-01"),
        pd.Timestamp("2018-12-31"),
    ]


def test_month_first_dates_with_dashes():
    assert _parse(["02-13-2018", "12-31-2018 10:00"]) == [
        pd.Timestamp("2018-02-13"),
        pd.Timestamp("2018-12-31 10:00"),
    ]
    assert _parse(["02-13-2018"], date_format="%m-%d-%Y") == [pd.Timestamp("2018-02-13")]


def test_offsets_after_a_time_still_convert_to_utc():
    values = [
        "01-02-2018 10:00+01:00",  # day-first date with an offset
        "2018-02-01T10:00:00Z",
        "2018-02-01 10:00:00 UTC",  # year first: never day-first
        "01-02-2018 10:00 -0500",
    ]
    assert _parse(values, dayfirst=True, timezone="Europe/Berlin") == [
        pd.Timestamp("2018-02-01 09:00"),
        pd.Timestamp("2018-02-01 10:00"),
        pd.Timestamp("2018-02-01 10:00"),
        pd.Timestamp("2018-02-01 15:00"),
    ]
    assert _parse(["01-02-2018 10:00 +0100"], date_format="%d-%m-%Y %H:%M %z") == [
        pd.Timestamp("2018-02-01 09:00")
    ]


@pytest.mark.parametrize("where", ["mapping", "part"])
def test_a_semicolon_export_with_day_first_dashes_imports(tmp_path, where):
    src = tmp_path / "export"
    src.mkdir()
    (src / "deals.csv").write_text(
        "id;rep;opened;closed;result\nD1;Ann;01-02-2018;15-03-2018;Won\nD2;Ann;20-02-2018;;\n"
    )
    opportunities = {
        "source": "deals.csv",
        "columns": {
            "opportunity_id": "id",
            "account_id": {"constant": "a1"},
            "owner_rep_id": {"id_from": "rep"},
            "created_at": "opened",
            "closed_at": "closed",
            "status": {"column": "result", "values": {"Won": "won"}, "fill": "open"},
        },
    }
    mapping = {
        "date_format": "%d-%m-%Y",
        "tables": {
            "reps": {"rows": [{"rep_id": "ann", "name": "Ann", "hired_at": "01-01-2017"}]},
            "accounts": {"rows": [{"account_id": "a1", "name": "A", "created_at": "01-01-2017"}]},
            "opportunities": opportunities,
        },
    }
    if where == "mapping":
        mapping["delimiter"] = ";"
    else:
        opportunities["delimiter"] = ";"
    tables, _ = map_tables(parse_mapping(mapping), FolderSource(str(src)))
    opps = tables["opportunities"].frame
    assert list(opps["created_at"]) == [pd.Timestamp("2018-02-01"), pd.Timestamp("2018-02-20")]
    assert opps["closed_at"][0] == pd.Timestamp("2018-03-15") and pd.isna(opps["closed_at"][1])
    assert list(opps["status"]) == ["won", "open"]
    assert tables["reps"].frame["hired_at"][0] == pd.Timestamp("2017-01-01")


def _one_table(tmp_path, text: str, columns: dict, **table) -> pd.DataFrame:
    """``text`` as ``leads.csv`` mapped to opportunities by ``columns``; the mapped frame."""
    src = tmp_path / "export"
    src.mkdir(exist_ok=True)
    (src / "leads.csv").write_text(text)
    (src / "won.csv").write_text("lead\nL2\nL3\n")
    mapping = {
        "tables": {
            "reps": {"rows": [{"rep_id": "r", "name": "R", "hired_at": "2017-01-01"}]},
            "accounts": {"rows": [{"account_id": "a", "name": "A", "created_at": "2017-01-01"}]},
            "opportunities": {"source": "leads.csv", "columns": columns, **table},
        }
    }
    tables, _ = map_tables(parse_mapping(mapping), FolderSource(str(src)))
    return tables["opportunities"].frame


LEADS = (
    "lead,tenure,day,month,clock,started\n"
    "L1,2,5,may,09:30,2018-05-05 09:30\n"
    "L2,13,31,Jan,,2018-01-31 23:10\n"
    "L3,0,1,12,17:00,2018-12-01 17:00\n"
)


def test_row_numbers_found_in_and_offsets(tmp_path):
    frame = _one_table(
        tmp_path,
        LEADS,
        {
            "opportunity_id": {"row_number": True, "id_prefix": "lead-"},
            "status": {
                "column": "lead",
                "found_in": {"source": "won.csv", "key": "lead"},
                "values": {"true": "won", "false": "lost"},
            },
            "created_at": {"constant": "2018-06-30", "minus": {"months": "tenure"}},
            "closed_at": {"column": "started", "plus": {"days": 1, "hours": 2}},
        },
    )
    assert list(frame["opportunity_id"]) == ["lead-2", "lead-3", "lead-4"]  # CSV line numbers
    assert list(frame["status"]) == ["lost", "won", "won"]
    assert list(frame["created_at"]) == [
        pd.Timestamp("2018-04-30"),
        pd.Timestamp("2017-05-30"),
        pd.Timestamp("2018-06-30"),
    ]
    assert frame["closed_at"][0] == pd.Timestamp("2018-05-06 11:30")


def test_an_export_without_dates_takes_the_file_order_as_its_times(tmp_path):
    """``plus: {minutes: row_number}``: each row a minute after the one above it (the CSV's
    line number, as the ids count), so a time split cuts by the file's order."""
    frame = _one_table(
        tmp_path,
        LEADS,
        {
            "opportunity_id": {"row_number": True},
            "created_at": {"constant": "2018-06-30", "plus": {"minutes": "row_number"}},
            "closed_at": {"constant": "2018-06-30", "plus": {"days": 2, "minutes": "row_number"}},
        },
    )
    start = pd.Timestamp("2018-06-30")
    assert list(frame["created_at"]) == [start + pd.Timedelta(minutes=m) for m in (2, 3, 4)]
    assert list(frame["closed_at"] - frame["created_at"]) == [pd.Timedelta(days=2)] * 3


def test_timestamps_from_parts_and_derived_hour_and_weekday(tmp_path):
    frame = _one_table(
        tmp_path,
        LEADS,
        {
            "opportunity_id": "lead",
            "created_at": {
                "from_parts": {"year": 2018, "month": "month", "day": "day", "time": "clock"}
            },
            "call_hour": {"column": "started", "derive": "hour"},
            "call_weekday": {"column": "started", "derive": "weekday"},
        },
        features={"numeric": ["call_hour", "call_weekday"]},
    )
    assert list(frame["created_at"]) == [
        pd.Timestamp("2018-05-05 09:30"),
        pd.Timestamp("2018-01-31"),
        pd.Timestamp("2018-12-01 17:00"),
    ]
    assert list(frame["call_hour"]) == [9.0, 23.0, 17.0]
    assert list(frame["call_weekday"]) == [5.0, 2.0, 5.0]  # Saturday, Wednesday, Saturday


def test_known_after_outcome_is_excluded_from_features():
    from salespilot.features.mapping import MappingError

    table = {
        "source": "leads.csv",
        "columns": {"quality": {"column": "q", "known": "after_outcome"}},
        "exclude": ["loss_reason"],
    }
    mapping = parse_mapping(
        {
            "tables": {
                "reps": {"source": "reps"},
                "accounts": {"source": "accounts"},
                "opportunities": table,
            }
        }
    )
    assert mapping.tables["opportunities"].excluded == ["loss_reason", "quality"]
    with pytest.raises(MappingError, match=r"known: after_outcome\) at once: \['quality'\]"):
        parse_mapping(
            {
                "tables": {
                    "reps": {"source": "reps"},
                    "accounts": {"source": "accounts"},
                    "opportunities": {**table, "features": {"categorical": ["quality"]}},
                }
            }
        )
