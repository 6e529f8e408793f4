"""The demo generator: contract tables, determinism, planted effects, calibrated truth."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from salespilot.features.demo import DemoKnobs, generate_history
from salespilot.features.demo.truth import (
    contact_profile,
    oracle_attempt,
    oracle_churn,
    oracle_win,
    read_truth,
)
from salespilot.features.schema import TABLES

END = pd.Timestamp("2026-06-30")


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _read(folder: Path, name: str) -> pd.DataFrame:
    df = pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False, na_values=[""])
    for col in TABLES[name].timestamp_columns:
        df[col] = pd.to_datetime(df[col])
    return df


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("small")
    generate_history(out, reps=6, months=4, seed=3, end=END)
    return out


def test_same_seed_same_bytes_other_seed_differs(small, tmp_path):
    again = tmp_path / "again"
    generate_history(again, reps=6, months=4, seed=3, end=END)
    assert _hashes(small) == _hashes(again)
    other = tmp_path / "other"
    generate_history(other, reps=6, months=4, seed=4, end=END)
    assert _hashes(other)["activities.csv"] != _hashes(small)["activities.csv"]


def test_writes_every_contract_table_with_its_columns(demo_history_dir):
    for name, schema in TABLES.items():
        df = _read(demo_history_dir, name)
        assert list(df.columns) == list(schema.column_names), name
        assert not df.duplicated(list(schema.key)).any(), name
        assert len(df) > 0, name
    for name in ("opportunities", "attempts", "churn", "contact_profiles", "opportunity_latent"):
        assert (demo_history_dir / "truth" / f"{name}.csv").exists()


def test_nothing_happens_at_or_after_end(demo_history_dir):
    for name, schema in TABLES.items():
        df = _read(demo_history_dir, name)
        for col in schema.timestamp_columns:
            assert (df[col].dropna() < END).all(), (name, col)


def test_references_and_enums_hold(demo_history_dir):
    t = {n: _read(demo_history_dir, n) for n in TABLES}
    for name, schema in TABLES.items():
        for col in schema.columns:
            vals = t[name][col.name].dropna()
            if col.references:
                ref_table, ref_col = col.references
                assert vals.isin(t[ref_table][ref_col]).all(), (name, col.name)
            if col.allowed:
                assert vals.isin(col.allowed).all(), (name, col.name)
    o = t["opportunities"]
    closed = o["status"] != "open"
    assert o.loc[closed, "closed_at"].notna().all()
    assert (o.loc[closed, "closed_at"] >= o.loc[closed, "created_at"]).all()
    assert o.loc[~closed, "closed_at"].isna().all()


def test_volumes_are_realistic(demo_history_dir):
    o = _read(demo_history_dir, "opportunities")
    a = _read(demo_history_dir, "activities")
    deals_per_rep_month = len(o) / 20 / 12
    assert 7 <= deals_per_rep_month <= 16
    closed = o[o["status"] != "open"]
    assert 0.2 <= (closed["status"] == "won").mean() <= 0.4
    assert 15 <= a["opportunity_id"].notna().sum() / len(o) <= 70


def test_parquet_has_the_same_rows(tmp_path):
    generate_history(tmp_path / "c", reps=3, months=2, seed=1, end=END)
    generate_history(tmp_path / "p", reps=3, months=2, seed=1, end=END, fmt="parquet")
    for name in TABLES:
        c = pd.read_csv(tmp_path / "c" / f"{name}.csv")
        p = pd.read_parquet(tmp_path / "p" / f"{name}.parquet")
        assert len(c) == len(p), name
        assert list(c.columns) == list(p.columns), name


def test_oracle_lookups(demo_history_dir):
    o = _read(demo_history_dir, "opportunities")
    rows = pd.DataFrame({"opportunity_id": o["opportunity_id"], "as_of": o["created_at"]})
    # strictly before: at the creation instant the deal is not known yet
    assert oracle_win(demo_history_dir, rows).isna().all()
    rows["as_of"] = o["created_at"] + pd.Timedelta(seconds=1)
    p = oracle_win(demo_history_dir, rows)
    assert p.between(0, 1).all()
    a = _read(demo_history_dir, "activities")
    attempts = a[(a["direction"] == "outbound") & a["channel"].isin(["call", "email"])]
    pa_ = oracle_attempt(demo_history_dir, attempts["activity_id"])
    assert pa_.notna().all() and pa_.between(0, 1).all()
    prof = contact_profile(demo_history_dir)
    assert len(prof) == 168 * len(_read(demo_history_dir, "contacts"))
    churn = read_truth(demo_history_dir, "churn")
    acc = churn["account_id"].iloc[:50]
    r = pd.DataFrame({"account_id": acc, "as_of": churn["period_start"].iloc[:50]})
    p30 = oracle_churn(demo_history_dir, r, 30)
    p90 = oracle_churn(demo_history_dir, r, 90)
    assert (p90 >= p30).all() and (p30 > 0).all()


def test_knobs_are_a_dataclass_with_defaults():
    k = DemoKnobs()
    assert 0.1 < k.strong_source_share < 0.3
    assert np.isfinite(k.bad_handover_share)
