"""The mapping file and its column rules, on three-row exports written by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from salespilot.features.mapping import MappingError, load_mapping, parse_mapping
from salespilot.features.mapping.sources import FolderSource, SourceError, open_source
from salespilot.features.mapping.transform import make_ids, map_tables, parse_timestamps

HASH_MOSES = "ede7017177df"

MINIMAL = {
    "reps": {"source": "reps"},
    "accounts": {"source": "accounts"},
    "opportunities": {"source": "opportunities"},
}


def _write(folder, name, text):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")


# -- the mapping model --------------------------------------------------------------------------


def test_a_misspelt_table_is_named_with_the_close_match():
    with pytest.raises(
        MappingError, match=r"unknown contract table 'oportunities'.*'opportunities'"
    ):
        parse_mapping({"tables": {**MINIMAL, "oportunities": {"source": "x"}}})


def test_required_tables_must_be_mapped():
    with pytest.raises(MappingError, match=r"required tables \['opportunities'\]"):
        parse_mapping({"tables": {"reps": {"source": "r"}, "accounts": {"source": "a"}}})


def test_a_column_needs_exactly_one_origin():
    bad = {**MINIMAL, "reps": {"source": "r", "columns": {"name": {"column": "a", "constant": 1}}}}
    with pytest.raises(MappingError, match=r"tables\.reps\.parts\.0\.columns\.name.*exactly one"):
        parse_mapping({"tables": bad})


def test_constant_null_is_an_origin_and_a_string_is_a_rename():
    m = parse_mapping(
        {
            "tables": {
                **MINIMAL,
                "reps": {
                    "source": "r",
                    "columns": {"left_at": {"constant": None}, "name": "agent"},
                },
            }
        }
    )
    cols = m.tables["reps"].parts[0].columns
    assert cols["left_at"].has_constant and cols["left_at"].constant is None
    assert cols["name"].column == "agent"


def test_unknown_time_zone_and_features_on_contract_columns_are_refused():
    with pytest.raises(MappingError, match="unknown time zone 'Mars/Olympus'"):
        parse_mapping({"timezone": "Mars/Olympus", "tables": MINIMAL})
    bad = {**MINIMAL, "opportunities": {"source": "o", "features": {"numeric": ["amount"]}}}
    with pytest.raises(MappingError, match="contract columns"):
        parse_mapping({"tables": bad})
    leak = {
        **MINIMAL,
        "opportunities": {"source": "o", "features": {"numeric": ["x"]}, "exclude": ["x"]},
    }
    with pytest.raises(MappingError, match="declared as a feature and excluded"):
        parse_mapping({"tables": leak})


def test_load_mapping_reports_the_file(tmp_path):
    with pytest.raises(MappingError, match="mapping file not found"):
        load_mapping(tmp_path / "nope.yaml")
    (tmp_path / "m.yaml").write_text("tables: [1, 2\n")
    with pytest.raises(MappingError, match="not valid YAML"):
        load_mapping(tmp_path / "m.yaml")


# -- column rules -------------------------------------------------------------------------------


def test_ids_from_names_are_stable_slugs_or_hashes():
    names = pd.DataFrame({"n": ["Moses Frase", "Zoë  O'Neil", "!!!", None]})
    ids = make_ids(names)
    assert list(ids[:2]) == ["moses-frase", "zoe-o-neil"]
    assert len(ids[2]) == 12 and ids[3] is None  # symbols only -> hash; no name -> no id
    assert make_ids(names, style="hash", prefix="r-")[0] == "r-" + HASH_MOSES  # same on any machine
    two = make_ids(pd.DataFrame({"a": ["Acme", "Acme"], "b": ["Berlin", "Paris"]}))
    assert list(two) == ["acme-berlin", "acme-paris"]


def test_timestamps_day_first_dates_without_time_and_zones():
    s = pd.Series(["03/01/2017 09:30", "2017-01-03", None, "tomorrow"])
    parsed = parse_timestamps(s, date_format=None, dayfirst=True, timezone="Europe/Berlin")
    # 09:30 in Berlin (winter) is 08:30 UTC; a date alone is midnight local time.
    assert parsed[0] == pd.Timestamp("2017-01-03 08:30")
    assert parsed[1] == pd.Timestamp("2017-01-02 23:00")
    assert pd.isna(parsed[2])
    assert parsed[3] == "tomorrow"  # kept as text so validation reports the row
    fixed = parse_timestamps(
        pd.Series(["31.12.2017", "2017-12-31T10:00:00+02:00"]),
        date_format="%d.%m.%Y",
        dayfirst=False,
        timezone="UTC",
    )
    assert list(fixed) == [pd.Timestamp("2017-12-31"), pd.Timestamp("2017-12-31 08:00")]


def _export(tmp_path):
    src = tmp_path / "export"
    _write(src, "team.csv", "agent,boss,office\nAnn Lee,Bo Chef,East\nCid Roe,Bo Chef,West\n")
    _write(src, "prices.csv", "product,price\nGTX Pro,4821\nMG Special,55\n")
    _write(
        src,
        "deals.csv",
        "id,agent,product,stage,engaged,closed,client\n"
        "D1,Ann Lee,GTXPro,Won,01/02/2017,15/03/2017,Acme\n"
        "D2,Cid Roe,MG Special,Engaging,20/02/2017,,\n"
        "D3,Cid Roe,MG Special,Prospecting,,,Acme\n",
    )
    return src


EXPORT_MAPPING = {
    "dayfirst": True,
    "tables": {
        "reps": {
            "source": "team.csv",
            "columns": {
                "rep_id": {"id_from": "agent"},
                "name": "agent",
                "team": "boss",
                "region": "office",
                "manager_id": {"id_from": "boss"},
                "hired_at": {"constant": "01/01/2016"},
                "left_at": {"constant": None},
            },
        },
        "accounts": {
            "parts": [
                {
                    "rows": [{"client": "Acme"}],
                    "columns": {
                        "account_id": {"id_from": "client"},
                        "name": "client",
                        "industry": {"constant": None},
                        "region": {"constant": None},
                        "employees": {"constant": None},
                        "created_at": {"constant": "01/01/2016"},
                        "owner_rep_id": {"constant": None},
                    },
                },
                {
                    "source": "deals.csv",
                    "where": [{"column": "client", "is_null": True}],
                    "columns": {
                        "account_id": {"id_from": "id", "id_prefix": "unknown-"},
                        "name": {"constant": "unknown"},
                        "created_at": {"constant": "01/01/2016"},
                    },
                },
            ]
        },
        "opportunities": {
            "source": "deals.csv",
            "columns": {
                "opportunity_id": "id",
                "account_id": {
                    "coalesce": [{"id_from": "client"}, {"id_from": "id", "id_prefix": "unknown-"}]
                },
                "owner_rep_id": {"id_from": "agent"},
                "product_line": {"column": "product", "values": {"GTXPro": "GTX Pro"}},
                "lead_source": {"constant": None},
                "amount": {
                    "column": "product",
                    "values": {"GTXPro": "GTX Pro"},
                    "lookup": {"source": "prices.csv", "key": "product", "value": "price"},
                },
                "created_at": {"coalesce": ["engaged", {"constant": "01/12/2017"}]},
                "expected_close_at": {"constant": None},
                "closed_at": "closed",
                "status": {
                    "column": "stage",
                    "values": {
                        "Won": "won",
                        "Lost": "lost",
                        "Engaging": "open",
                        "Prospecting": "open",
                    },
                },
                "stage": "stage",
            },
            "features": {"categorical": ["stage"]},
        },
    },
}


def test_map_tables_applies_renames_value_maps_lookups_coalesce_and_filters(tmp_path):
    src = _export(tmp_path)
    tables, notes = map_tables(parse_mapping(EXPORT_MAPPING), FolderSource(str(src)))
    assert notes == []
    reps = tables["reps"].frame
    assert list(reps["rep_id"]) == ["ann-lee", "cid-roe"]
    assert list(reps["hired_at"]) == [pd.Timestamp("2016-01-01")] * 2
    opps = tables["opportunities"].frame.set_index("opportunity_id")
    assert opps.loc["D1", "product_line"] == "GTX Pro"
    assert list(opps["amount"].astype(float)) == [4821.0, 55.0, 55.0]
    assert list(opps["status"]) == ["won", "open", "open"]
    assert list(opps["account_id"]) == ["acme", "unknown-d2", "acme"]
    assert opps.loc["D1", "closed_at"] == pd.Timestamp("2017-03-15")  # day first
    assert opps.loc["D3", "created_at"] == pd.Timestamp("2017-12-01")  # the constant
    accounts = tables["accounts"].frame
    assert list(accounts["account_id"]) == ["acme", "unknown-d2"]
    # every row knows where it came from, in the user's own row numbers (CSV line numbers)
    origin = tables["accounts"].origin
    assert list(origin["source"]) == ["mapping rows", "deals.csv"]
    assert list(origin["source_row"]) == [1, 3]


def test_a_lookup_miss_and_a_misspelt_source_column_are_reported(tmp_path):
    src = _export(tmp_path)
    mapping = {**EXPORT_MAPPING, "tables": dict(EXPORT_MAPPING["tables"])}
    opp = {**mapping["tables"]["opportunities"]}
    opp["columns"] = {
        **opp["columns"],
        "amount": {
            "column": "product",
            "lookup": {"source": "prices.csv", "key": "product", "value": "price"},
        },
    }
    mapping["tables"]["opportunities"] = opp
    _, notes = map_tables(parse_mapping(mapping), FolderSource(str(src)))
    assert notes == [
        "opportunities.amount: 1 values not found in prices.csv.product (e.g. ['GTXPro']); "
        "add them to a `values:` map"
    ]
    opp["columns"] = {**opp["columns"], "name": "agnet"}
    with pytest.raises(MappingError, match=r"no source column 'agnet' \(did you mean 'agent'\?\)"):
        map_tables(parse_mapping(mapping), FolderSource(str(src)))


def test_sources_name_what_exists(tmp_path):
    src = _export(tmp_path)
    with pytest.raises(SourceError, match=r"did you mean 'deals\.csv'"):
        FolderSource(str(src)).read("deal.csv")
    with pytest.raises(SourceError, match="neither a folder nor a database URL"):
        open_source(tmp_path / "missing")


def test_the_mappings_in_the_docs_are_valid():
    import re
    from pathlib import Path

    import yaml

    text = (Path(__file__).parents[2] / "docs" / "import.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    assert len(blocks) >= 2
    for block in blocks:
        if not block.startswith(("version", "tables")):
            continue  # a fragment
        data = yaml.safe_load(block)
        if "tables" in data and {"reps", "accounts", "opportunities"} <= set(data["tables"]):
            parse_mapping(data)


def test_a_custom_feature_name_means_one_thing():
    both = {
        **MINIMAL,
        "accounts": {"source": "a", "features": {"numeric": ["score"]}},
        "opportunities": {"source": "o", "features": {"categorical": ["score"]}},
    }
    with pytest.raises(MappingError, match="declared on both accounts and opportunities"):
        parse_mapping({"tables": both})
