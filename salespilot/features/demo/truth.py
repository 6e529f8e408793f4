"""Read the generator's ground truth and look up the oracle for feature rows.

The oracle is the true probability behind each label, given what the generator knew at the
row's ``as_of``: a model trained on the history can approach it but never beat it, so
training compares its metrics with the oracle's on the same rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

TRUTH_FILES = ("opportunities", "opportunity_latent", "attempts", "churn", "contact_profiles")
_TIMESTAMPS = {
    "opportunities": ("valid_from",),
    "churn": ("period_start", "period_end", "bad_handover_until", "new_customer_until"),
}


def truth_path(path: str | Path) -> Path:
    """The ``truth/`` folder of a generated history (accepts the history folder or truth/ itself)."""
    p = Path(path)
    if (p / "truth").is_dir():
        return p / "truth"
    if p.is_dir() and any(
        (p / f"{n}.csv").exists() or (p / f"{n}.parquet").exists() for n in TRUTH_FILES
    ):
        return p
    raise FileNotFoundError(
        f"{p} has no truth/ folder: only generated demo histories carry ground truth"
    )


def read_truth(path: str | Path, name: str) -> pd.DataFrame:
    """One truth table (CSV or Parquet) with ids as strings and timestamps tz-naive UTC."""
    if name not in TRUTH_FILES:
        raise KeyError(f"unknown truth table {name!r}; there are {TRUTH_FILES}")
    d = truth_path(path)
    pq_file, csv_file = d / f"{name}.parquet", d / f"{name}.csv"
    if pq_file.exists():
        df = pd.read_parquet(pq_file)
    elif csv_file.exists():
        id_cols = {
            "opportunity_id": "str",
            "activity_id": "str",
            "account_id": "str",
            "contact_id": "str",
        }
        df = pd.read_csv(csv_file, dtype=id_cols)
    else:
        raise FileNotFoundError(f"{d} has no {name}.csv or {name}.parquet")
    for col in _TIMESTAMPS.get(name, ()):
        df[col] = pd.to_datetime(df[col]).astype("datetime64[ns]")
    return df


def _as_naive(s: pd.Series) -> pd.Series:
    s = pd.to_datetime(s)
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    return s.astype("datetime64[ns]")


def read_meta(path: str | Path) -> dict:
    """How the history was generated: seed, sizes, start, end and the knobs."""
    return json.loads((truth_path(path) / "meta.json").read_text())


def oracle_win(
    path: str | Path, rows: pd.DataFrame, horizon_days: float | None = None
) -> pd.Series:
    """True probability that each (opportunity_id, as_of) closes won (within ``horizon_days``).

    The deal's state is its last truth row with ``valid_from < as_of`` (strictly before, like
    every feature); NaN for a deal not yet created at ``as_of``. Without a horizon: the
    probability of eventually winning. With one: the probability that it is won by
    ``as_of + horizon_days``, propagating the generator's own daily chain (same calendar and
    knobs). Returned in ``rows``' order and index.
    """
    truth = read_truth(path, "opportunities")
    q = pd.DataFrame(
        {
            "opportunity_id": rows["opportunity_id"].astype(str).to_numpy(),
            "as_of": _as_naive(rows["as_of"]).to_numpy(),
        }
    )
    q["_pos"] = np.arange(len(q))
    q = q.sort_values("as_of", kind="stable")
    truth = truth.sort_values("valid_from", kind="stable")
    m = pd.merge_asof(
        q,
        truth,
        left_on="as_of",
        right_on="valid_from",
        by="opportunity_id",
        allow_exact_matches=False,
        direction="backward",
    ).sort_values("_pos")
    p = m["p_win"].to_numpy(dtype=float).copy()
    if horizon_days is not None:
        p = _win_within(path, m, p, float(horizon_days))
    return pd.Series(p, index=rows.index, name="oracle_p_win")


def _win_within(
    path: str | Path, m: pd.DataFrame, p_eventual: np.ndarray, horizon_days: float
) -> np.ndarray:
    """P(won by as_of + horizon) for open rows of ``m`` (closed rows keep their 1 / 0)."""
    from salespilot.features.demo import chain
    from salespilot.features.demo.knobs import DemoKnobs
    from salespilot.features.demo.world import STAGES

    meta = read_meta(path)
    knobs = DemoKnobs(**meta["knobs"])
    start = pd.Timestamp(meta["start"])
    end = pd.Timestamp(meta["end"])
    out = p_eventual.copy()
    live = m["logit"].notna().to_numpy() & m["stage"].isin(STAGES).to_numpy()
    if not live.any():
        return out
    lv = m[live]
    day_s = 86_400
    as_of = (lv["as_of"] - start).dt.total_seconds().to_numpy()
    since = (lv["valid_from"] - start).dt.total_seconds().to_numpy()
    # a day's move happens from 07:00 UTC on; one move per deal and day, none on the day it started
    first = np.maximum(np.ceil((as_of - 7 * 3600) / day_s), np.floor(since / day_s) + 1).astype(
        np.int64
    )
    last = np.floor((as_of + horizon_days * day_s - 14 * 3600) / day_s).astype(np.int64)
    steps = np.maximum(last - first + 1, 0)
    days = int((end - start) / pd.Timedelta(days=1)) + int(np.ceil(horizon_days)) + 3
    cal = chain.day_calendar(start, days, knobs)
    stage = lv["stage"].map({s: i for i, s in enumerate(STAGES)}).to_numpy(dtype=np.int64)
    out[live] = chain.win_within(
        stage,
        lv["stalled"].astype(bool).to_numpy(),
        lv["logit"].to_numpy(dtype=float),
        lv["stall_hazard"].to_numpy(dtype=float),
        lv["speed"].to_numpy(dtype=float),
        np.maximum(first, 0),
        steps,
        cal,
        knobs,
    )
    return out


def oracle_churn(
    path: str | Path, rows: pd.DataFrame, horizon_days: float, method: str = "expected"
) -> pd.Series:
    """True probability that each (account_id, as_of) loses all subscription value in the horizon.

    ``method="expected"`` (default): what the generator knew at ``as_of`` - the current
    week's drawn probability for its rest, then the expectation over the account's future
    health paths (its weekly AR(1), Monte Carlo with a fixed seed), with the hand-over and
    new-customer effects expiring on their dates. ``method="realized"``: ``1 - prod(1 - p)``
    over the weekly probabilities actually drawn in ``[as_of, as_of + horizon)`` (a partly
    covered week with its covered fraction) - it knows the health that came later, so it is
    a looser upper bound. Accounts without an active period at ``as_of`` get 0.
    """
    if method not in ("expected", "realized"):
        raise ValueError(f"method must be 'expected' or 'realized', not {method!r}")
    truth = read_truth(path, "churn")
    q = pd.DataFrame(
        {
            "account_id": rows["account_id"].astype(str).to_numpy(),
            "start": _as_naive(rows["as_of"]).to_numpy(),
        }
    )
    q["end"] = q["start"] + pd.Timedelta(days=horizon_days)
    q["_pos"] = np.arange(len(q))
    if method == "realized":
        out = _realized_churn(truth, q)
    else:
        out = _expected_churn(path, truth, q, horizon_days)
    return pd.Series(out, index=rows.index, name="oracle_p_churn")


def _realized_churn(truth: pd.DataFrame, q: pd.DataFrame) -> np.ndarray:
    m = q.merge(truth, on="account_id", how="inner")
    m = m[(m["period_end"] > m["start"]) & (m["period_start"] < m["end"])]
    length = (m["period_end"] - m["period_start"]).dt.total_seconds().to_numpy()
    lo = np.maximum(m["period_start"].to_numpy(), m["start"].to_numpy())
    hi = np.minimum(m["period_end"].to_numpy(), m["end"].to_numpy())
    frac = ((hi - lo) / np.timedelta64(1, "s")) / length
    log_keep = frac * np.log1p(-np.clip(m["p_churn"].to_numpy(), 0, 1 - 1e-12))
    summed = pd.Series(log_keep, index=m["_pos"].to_numpy()).groupby(level=0).sum()
    out = np.zeros(len(q))
    out[summed.index.to_numpy()] = 1 - np.exp(summed.to_numpy())
    return out


def _expected_churn(
    path: str | Path, truth: pd.DataFrame, q: pd.DataFrame, horizon_days: float
) -> np.ndarray:
    from salespilot.features.demo import chain
    from salespilot.features.demo.knobs import DemoKnobs

    knobs = DemoKnobs(**read_meta(path)["knobs"])
    week = pd.Timedelta(days=7)
    # the weekly period in force at as_of (starts at or before it, ends after it)
    cur = pd.merge_asof(
        q.sort_values("start", kind="stable"),
        truth.sort_values("period_start", kind="stable"),
        left_on="start",
        right_on="period_start",
        by="account_id",
        direction="backward",
    ).sort_values("_pos")
    out = np.zeros(len(q))
    ok = (cur["period_start"].notna() & (cur["period_end"] > cur["start"])).to_numpy()
    if not ok.any():
        return out
    c = cur[ok]
    length = (c["period_end"] - c["period_start"]).dt.total_seconds().to_numpy()
    first_end = np.minimum(c["period_end"].to_numpy(), c["end"].to_numpy())
    f0 = ((first_end - c["start"].to_numpy()) / np.timedelta64(1, "s")) / length
    log_first = f0 * np.log1p(-np.clip(c["p_churn"].to_numpy(), 0, 1 - 1e-12))
    # later weeks: start at the current period's end, one every 7 days while in the horizon
    n_weeks = int(np.ceil(horizon_days / 7)) + 1
    starts = (
        c["period_end"].to_numpy()[:, None] + np.arange(n_weeks)[None, :] * week.to_timedelta64()
    )
    ends = c["end"].to_numpy()[:, None]
    frac = np.clip((ends - starts) / week.to_timedelta64(), 0, 1).astype(float)
    bad = (c["bad_handover_until"].to_numpy()[:, None] > starts) & c[
        "bad_handover_until"
    ].notna().to_numpy()[:, None]
    new = (c["new_customer_until"].to_numpy()[:, None] > starts) & c[
        "new_customer_until"
    ].notna().to_numpy()[:, None]
    week_logit = (
        c["logit_static"].to_numpy()[:, None]
        + knobs.handover_penalty * bad
        + chain.NEW_CUSTOMER_LOGIT * new
    )
    survive = np.ones(len(c))
    for lo in range(0, len(c), 20_000):
        sl = slice(lo, lo + 20_000)
        survive[sl] = chain.expected_survival(
            c["health"].to_numpy()[sl],
            c["health_mean"].to_numpy()[sl],
            week_logit[sl],
            frac[sl],
            knobs.churn_health_effect,
        )
    out[ok] = 1 - np.exp(log_first) * survive
    return out


def oracle_attempt(path: str | Path, activity_ids: pd.Series | list[str] | np.ndarray) -> pd.Series:
    """True connect (call) / 24 h reply (email) probability of outbound attempts; NaN if unknown."""
    truth = read_truth(path, "attempts").set_index("activity_id")["p_success"]
    ids = pd.Series(activity_ids).astype(str)
    out = truth.reindex(ids.to_numpy()).to_numpy()
    index = activity_ids.index if isinstance(activity_ids, pd.Series) else None
    return pd.Series(out, index=index, name="oracle_p_success")


def contact_profile(path: str | Path) -> pd.DataFrame:
    """Each contact's true hour-of-week answer pattern in its local time.

    Columns contact_id, weekday (0=Mon), hour (local 0-23), p_connect_call, p_reply_email
    (at neutral engagement; an attempt's own probability also reflects the deal's state).
    """
    return read_truth(path, "contact_profiles")
