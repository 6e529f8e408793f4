"""Bookings forecast for a period as a simulated distribution, per rep x product line.

Two sources of bookings inside the period:

* **open pipeline** - each deal open at ``as_of`` is won inside the period with probability
  ``p_win x P(close inside the period | won, stage, age)``; its amount is known;
* **new business** - deals not yet created that are created and won inside the period. Each
  rep's rate per product line comes from reference windows in the past (the same window
  shifted back month by month), deseasonalised, divided by the rep's tenure ramp, and shrunk
  towards the team's rate (a Gamma-Poisson model, so a new rep with three months of history
  is not judged on three deals). Amounts are drawn from the rep's own won deals mixed with
  the product line's.

Both are simulated (numpy, seeded) at the rep x product-line level. Every roll-up - team,
region, product line, company - is the sum of the *same* draws, so a team's P50 is the P50 of
the sum of its reps' draws, not the sum of their P50s.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from salespilot.features.history import History
from salespilot.targets.modelled import Scorer
from salespilot.targets.periods import Period
from salespilot.targets.pipeline import close_within_window, open_pipeline

log = logging.getLogger(__name__)

UNIT_COLUMNS = {
    "rep": "rep_id",
    "team": "team",
    "region": "region",
    "product_line": "product_line",
    "company": None,
}


@dataclass(frozen=True)
class ForecastConfig:
    """Knobs of the forecast; defaults are the embedded ones (see ``Settings.targets_*``)."""

    simulations: int = 4000
    seed: int = 0
    ramp_months: float = 6.0
    reference_months: int = 12
    rate_prior_strength: float = 2.0
    amount_prior_strength: float = 5.0
    market_sigma: float = 0.0


@dataclass
class Forecast:
    """Simulated bookings of every rep x product-line cell for one period."""

    period: Period
    as_of: pd.Timestamp
    cells: pd.DataFrame
    pipeline_draws: np.ndarray
    new_draws: np.ndarray
    p_win_source: str = "empirical"
    notes: list[str] = field(default_factory=list)

    @property
    def draws(self) -> np.ndarray:
        """(simulations, cells) total bookings."""
        return self.pipeline_draws + self.new_draws

    def unit_draws(self, by: str) -> tuple[list[str], np.ndarray]:
        """Labels and (simulations, units) bookings, summing the same cell draws."""
        labels, codes = self._codes(by)
        return labels, _sum_columns(self.draws, codes, len(labels))

    def _codes(self, by: str) -> tuple[list[str], np.ndarray]:
        if by not in UNIT_COLUMNS:
            raise ValueError(f"unit {by!r} must be one of {sorted(UNIT_COLUMNS)}")
        col = UNIT_COLUMNS[by]
        if col is None:
            return ["company"], np.zeros(len(self.cells), dtype=int)
        codes, uniques = pd.factorize(self.cells[col].astype(str), sort=True)
        return [str(u) for u in uniques], codes

    def summary(self, by: str, quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)) -> pd.DataFrame:
        """Per unit: mean, the quantiles (``p10``...), and the pipeline / new-business split."""
        labels, codes = self._codes(by)
        total = _sum_columns(self.draws, codes, len(labels))
        pipe = _sum_columns(self.pipeline_draws, codes, len(labels))
        new = _sum_columns(self.new_draws, codes, len(labels))
        out = pd.DataFrame({"unit": labels})
        out["mean"] = total.mean(axis=0)
        for q in quantiles:
            out[quantile_name(q)] = np.quantile(total, q, axis=0)
        out["pipeline_mean"] = pipe.mean(axis=0)
        out["new_business_mean"] = new.mean(axis=0)
        out["open_deals"] = np.bincount(
            codes, weights=self.cells["open_deals"].to_numpy(float), minlength=len(labels)
        ).astype(int)
        return out

    def restrict(self, mask: np.ndarray | pd.Series) -> Forecast:
        """The same forecast over a subset of cells (e.g. one team), same draws."""
        m = np.asarray(mask, dtype=bool)
        return Forecast(
            period=self.period,
            as_of=self.as_of,
            cells=self.cells.loc[m].reset_index(drop=True),
            pipeline_draws=self.pipeline_draws[:, m],
            new_draws=self.new_draws[:, m],
            p_win_source=self.p_win_source,
            notes=list(self.notes),
        )


def quantile_name(q: float) -> str:
    return f"p{round(q * 100):d}"


def _sum_columns(draws: np.ndarray, codes: np.ndarray, n: int) -> np.ndarray:
    onehot = np.zeros((draws.shape[1], n))
    onehot[np.arange(draws.shape[1]), codes] = 1.0
    return draws @ onehot


# -- roster and ramp ------------------------------------------------------------------------


def active_reps(history: History, at: pd.Timestamp) -> pd.DataFrame:
    """Reps employed at ``at`` as far as was known then (hired before, not yet left)."""
    reps = history.reps
    left = reps["left_at"]
    mask = (reps["hired_at"] < at) & (left.isna() | (left >= at))
    return reps.loc[mask].reset_index(drop=True)


def tenure_months(hired_at: pd.Series | pd.Timestamp, at: pd.Timestamp) -> np.ndarray:
    days = (pd.Timestamp(at) - pd.to_datetime(hired_at)) / pd.Timedelta(days=1)
    return np.clip(np.asarray(days, dtype=float) / 30.4375, 0.0, None)


def ramp_factor(tenure: np.ndarray | float, ramp_months: float) -> np.ndarray:
    """Share of a fully ramped rep's productivity: linear from 0 to 1 over ``ramp_months``."""
    if ramp_months <= 0:
        return np.ones_like(np.asarray(tenure, dtype=float))
    return np.clip(np.asarray(tenure, dtype=float) / ramp_months, 0.0, 1.0)


def _window_ramp(hired_at: pd.Series, start: pd.Timestamp, end: pd.Timestamp, ramp: float):
    """Average ramp over a window (evaluated at its midpoint) - the window's exposure."""
    mid = start + (end - start) / 2
    return ramp_factor(tenure_months(hired_at, mid), ramp)


# -- seasonality ----------------------------------------------------------------------------


def seasonality_index(history: History, as_of: pd.Timestamp) -> np.ndarray:
    """Bookings per active rep by calendar month relative to the average (12 values).

    Needs a full year of history; shrunk towards 1 by the number of years seen, so one odd
    December does not define every December.
    """
    as_of = pd.Timestamp(as_of)
    opp = history.opportunities
    won = opp[(opp["status"] == "won") & (opp["closed_at"] < as_of)]
    if won.empty:
        return np.ones(12)
    first = won["closed_at"].min().to_period("M").to_timestamp()
    last_full = (as_of.to_period("M") - 1).to_timestamp()
    months = pd.date_range(first, last_full, freq="MS")
    if len(months) < 12:
        return np.ones(12)
    booked = won.groupby(won["closed_at"].dt.to_period("M").dt.to_timestamp())["amount"].sum()
    booked = booked.reindex(months, fill_value=0.0)
    reps = history.reps
    starts = months.to_numpy()[:, None]
    ends = (months + pd.DateOffset(months=1)).to_numpy()[:, None]
    hired = reps["hired_at"].to_numpy()[None, :]
    left = reps["left_at"].to_numpy()[None, :]
    active = ((hired < starts) & (np.isnat(left) | (left >= ends))).sum(axis=1).astype(float)
    per_rep = booked.to_numpy() / np.maximum(active, 1.0)
    if per_rep.mean() <= 0:
        return np.ones(12)
    rel = per_rep / per_rep.mean()
    idx = np.ones(12)
    for moy in range(12):
        vals = rel[months.month == moy + 1]
        if len(vals):
            n = len(vals)
            idx[moy] = 1.0 + (vals.mean() - 1.0) * n / (n + 1.0)
    return idx / idx.mean()


def _window_season(index: np.ndarray, start: pd.Timestamp, end: pd.Timestamp) -> float:
    months = pd.date_range(start, end - pd.Timedelta(days=1), freq="MS")
    if len(months) == 0:
        months = pd.DatetimeIndex([start])
    return float(index[months.month - 1].mean())


# -- new business ---------------------------------------------------------------------------


def new_business_rates(
    history: History, period: Period, as_of: pd.Timestamp, config: ForecastConfig
) -> pd.DataFrame:
    """Expected count of new deals created after ``as_of`` and won inside the period.

    One row per active rep x product line with ``expected_count`` and the Gamma posterior
    (``shape``, ``rate``) of the mature rate plus the multiplier (ramp x season) to apply.
    """
    as_of = pd.Timestamp(as_of)
    opp = history.opportunities
    reps = active_reps(history, max(as_of, period.start))
    lines = sorted(opp.loc[opp["created_at"] < as_of, "product_line"].astype(str).unique())
    season = seasonality_index(history, as_of)
    created_from = as_of
    won_from = max(period.start, as_of)
    won_all = opp[opp["status"] == "won"]
    created = won_all["created_at"].to_numpy()
    closed = won_all["closed_at"].to_numpy()
    all_reps = history.reps["rep_id"].to_numpy()
    rep_pos = pd.Index(all_reps).get_indexer(won_all["owner_rep_id"])
    line_pos = pd.Index(lines).get_indexer(won_all["product_line"].astype(str))
    known = (rep_pos >= 0) & (line_pos >= 0)
    counts = np.zeros((len(all_reps), len(lines)))
    exposure_all = np.zeros(len(all_reps))
    windows = 0
    for k in range(1, config.reference_months + 1):
        shift = pd.DateOffset(months=k)
        r_end, r_as_of, r_won_from = period.end - shift, created_from - shift, won_from - shift
        r_start = period.start - shift
        if r_end > as_of:
            continue  # the reference window's outcome is not fully known yet
        hit = known & (created >= r_as_of.to_datetime64()) & (created < r_end.to_datetime64())
        hit &= (closed >= r_won_from.to_datetime64()) & (closed < r_end.to_datetime64())
        # Deseasonalised: a window in a strong season counts for less.
        np.add.at(
            counts, (rep_pos[hit], line_pos[hit]), 1.0 / _window_season(season, r_start, r_end)
        )
        ramp = _window_ramp(history.reps["hired_at"], r_as_of, r_end, config.ramp_months)
        exposure_all += ramp * _employed_share(history.reps, r_as_of, r_end)
        windows += 1
    if not windows:
        log.warning("no fully observed reference window before %s: new business is 0", as_of)
    idx = pd.MultiIndex.from_product([reps["rep_id"], lines], names=["rep_id", "product_line"])
    pos = pd.Index(all_reps).get_indexer(reps["rep_id"])
    count = pd.Series(counts[pos].reshape(-1) if len(lines) else [], index=idx, dtype=float)
    exposure = pd.Series(exposure_all[pos], index=reps["rep_id"].to_numpy())
    frame = count.rename("count").reset_index()
    frame = frame.merge(reps[["rep_id", "team"]], on="rep_id")
    frame["exposure"] = exposure.reindex(frame["rep_id"]).to_numpy()
    # Team prior: pooled deseasonalised rate per fully ramped rep-window and product line.
    team = frame.groupby(["team", "product_line"])[["count", "exposure"]].sum()
    company = frame.groupby("product_line")[["count", "exposure"]].sum()
    company_rate = company["count"] / company["exposure"].clip(lower=1e-9)
    team_rate = (
        team["count"] + 2.0 * company_rate.reindex(team.index.get_level_values(1)).values
    ) / (team["exposure"] + 2.0)
    prior = team_rate.reindex(pd.MultiIndex.from_frame(frame[["team", "product_line"]])).to_numpy()
    m = config.rate_prior_strength
    frame["shape"] = frame["count"] + m * np.nan_to_num(prior)
    frame["rate"] = frame["exposure"] + m
    tenure_start = period.start if as_of <= period.start else as_of
    hired = reps.set_index("rep_id")["hired_at"].reindex(frame["rep_id"])
    frame["ramp"] = _window_ramp(hired, tenure_start, period.end, config.ramp_months)
    left = reps.set_index("rep_id")["left_at"]
    frame["season"] = _window_season(season, period.start, period.end)
    frame["multiplier"] = frame["ramp"] * frame["season"]
    frame["expected_count"] = frame["shape"] / frame["rate"] * frame["multiplier"]
    del left
    return frame


def _employed_share(reps: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
    hired = reps["hired_at"].clip(lower=start)
    left = reps["left_at"].fillna(end).clip(upper=end)
    days = (left - hired) / pd.Timedelta(days=1)
    return np.clip(days.to_numpy(dtype=float) / max((end - start).days, 1), 0.0, 1.0)


def _amount_pools(history: History, as_of: pd.Timestamp) -> tuple[dict, dict]:
    opp = history.opportunities
    won = opp[(opp["status"] == "won") & (opp["closed_at"] < as_of) & (opp["amount"] > 0)]
    by_rep = {
        (str(r), str(p)): g["amount"].to_numpy(float)
        for (r, p), g in won.groupby(["owner_rep_id", "product_line"])
    }
    by_line = {str(p): g["amount"].to_numpy(float) for p, g in won.groupby("product_line")}
    return by_rep, by_line


# -- the simulation ---------------------------------------------------------------------------


def forecast_with(
    scorer: Scorer,
    history: History,
    period: Period,
    *,
    as_of: pd.Timestamp,
    config: ForecastConfig | None = None,
) -> Forecast:
    """:func:`build_forecast` with the open deals scored by ``scorer``; its ``source`` and
    ``horizon_days`` say what its p_win means."""
    return build_forecast(
        history,
        period,
        as_of=as_of,
        scored_deals=scorer.predict(history, as_of),
        config=config,
        p_win_source=scorer.source,
        p_win_horizon_days=scorer.horizon_days,
    )


def build_forecast(
    history: History,
    period: Period,
    *,
    as_of: pd.Timestamp,
    scored_deals: pd.DataFrame,
    config: ForecastConfig | None = None,
    p_win_source: str = "empirical",
    p_win_horizon_days: float | None = None,
) -> Forecast:
    """Simulate the bookings of every active rep x product line inside ``period``.

    ``scored_deals`` holds ``opportunity_id`` and ``p_win`` for the deals open at ``as_of``
    (from the champion model, or :func:`empirical_win_probability`); deals without a score
    count as not won. Only data strictly before ``as_of`` is used. When ``p_win`` means "won
    within ``p_win_horizon_days``" (the champion model's label) it is first turned into an
    eventual win probability by dividing by the history's P(close within the horizon | won,
    stage, age).
    """
    config = config or ForecastConfig()
    as_of = pd.Timestamp(as_of)
    if as_of >= period.end:
        raise ValueError(
            f"period {period} ended before as_of {as_of:%Y-%m-%d}: nothing to forecast"
        )
    rng = np.random.default_rng(config.seed)
    n = config.simulations
    reps = active_reps(history, max(as_of, period.start))
    if reps.empty:
        raise ValueError(f"no rep is employed at {max(as_of, period.start):%Y-%m-%d}")
    deals = open_pipeline(history, as_of)
    deals = deals[deals["owner_rep_id"].isin(reps["rep_id"])].reset_index(drop=True)
    scores = scored_deals.drop_duplicates("opportunity_id").set_index("opportunity_id")["p_win"]
    p_win = scores.reindex(deals["opportunity_id"]).fillna(0.0).to_numpy(float)
    if p_win_horizon_days:
        within = close_within_window(
            history, as_of, deals, as_of, as_of + pd.Timedelta(days=p_win_horizon_days)
        )
        p_win = np.clip(p_win / np.clip(within, 0.05, 1.0), 0.0, 1.0)
    timing = close_within_window(history, as_of, deals, period.start, period.end)
    deals["p_close_in_period"] = np.clip(p_win * timing, 0.0, 1.0)

    rates = new_business_rates(history, period, as_of, config)
    cells = rates[["rep_id", "product_line"]].copy()
    extra = deals[["owner_rep_id", "product_line"]].drop_duplicates()
    extra = extra.rename(columns={"owner_rep_id": "rep_id"})
    cells = (
        pd.concat([cells, extra], ignore_index=True)
        .drop_duplicates()
        .sort_values(["rep_id", "product_line"])
        .reset_index(drop=True)
    )
    info = reps.set_index("rep_id")
    cells["team"] = info["team"].reindex(cells["rep_id"]).astype(str).to_numpy()
    cells["region"] = info["region"].reindex(cells["rep_id"]).astype(str).to_numpy()
    cells["rep_name"] = info["name"].reindex(cells["rep_id"]).astype(str).to_numpy()
    tenure = tenure_months(info["hired_at"].reindex(cells["rep_id"]), period.start)
    cells["tenure_months"] = tenure
    cells["ramp"] = ramp_factor(tenure, config.ramp_months)
    cell_index = pd.MultiIndex.from_frame(cells[["rep_id", "product_line"]])

    # Open pipeline: one Bernoulli per deal and simulation, summed per cell.
    deal_cell = cell_index.get_indexer(
        pd.MultiIndex.from_arrays([deals["owner_rep_id"], deals["product_line"]])
    )
    pipeline_draws = np.zeros((n, len(cells)))
    chunk = max(1, 2_000_000 // max(n, 1))
    for lo in range(0, len(deals), chunk):
        sl = slice(lo, lo + chunk)
        won = rng.random((n, len(deals.iloc[sl]))) < deals["p_close_in_period"].to_numpy()[sl]
        booked = won * deals["amount"].to_numpy(float)[sl]
        onehot = np.zeros((booked.shape[1], len(cells)))
        onehot[np.arange(booked.shape[1]), deal_cell[sl]] = 1.0
        pipeline_draws += booked @ onehot
    cells["open_deals"] = np.bincount(deal_cell, minlength=len(cells))
    cells["pipeline_expected"] = np.bincount(
        deal_cell,
        weights=deals["p_close_in_period"].to_numpy() * deals["amount"].to_numpy(float),
        minlength=len(cells),
    )

    # New business: Gamma-Poisson counts, amounts from the rep's own deals mixed with the line's.
    rates = rates.set_index(["rep_id", "product_line"]).reindex(cell_index)
    shape = rates["shape"].fillna(0.0).to_numpy()
    rate = rates["rate"].fillna(1.0).to_numpy()
    mult = rates["multiplier"].fillna(0.0).to_numpy()
    lam = rng.gamma(np.maximum(shape, 1e-9), 1.0 / rate, size=(n, len(cells))) * mult
    if config.market_sigma > 0:
        shock = rng.lognormal(-0.5 * config.market_sigma**2, config.market_sigma, size=(n, 1))
        lam = lam * shock
    counts = rng.poisson(lam)
    by_rep, by_line = _amount_pools(history, as_of)
    all_amounts = np.concatenate(list(by_line.values())) if by_line else np.array([0.0])
    new_draws = np.zeros((n, len(cells)))
    sims = np.arange(n)
    for j, (rep_id, line) in enumerate(cell_index):
        total = int(counts[:, j].sum())
        if total == 0:
            continue
        own = by_rep.get((str(rep_id), str(line)), np.array([]))
        pool = by_line.get(str(line), all_amounts)
        w_own = len(own) / (len(own) + config.amount_prior_strength)
        pick_own = rng.random(total) < w_own
        amounts = np.where(
            pick_own & (len(own) > 0),
            own[rng.integers(0, max(len(own), 1), total)] if len(own) else 0.0,
            pool[rng.integers(0, len(pool), total)],
        )
        new_draws[:, j] = np.bincount(np.repeat(sims, counts[:, j]), weights=amounts, minlength=n)
    cells["new_business_expected_count"] = (shape / rate) * mult
    forecast = Forecast(
        period=period,
        as_of=as_of,
        cells=cells,
        pipeline_draws=pipeline_draws,
        new_draws=new_draws,
        p_win_source=p_win_source,
    )
    log.info(
        "forecast %s as of %s: %d cells, %d open deals, mean %.0f",
        period,
        as_of.date(),
        len(cells),
        len(deals),
        forecast.draws.sum(axis=1).mean(),
    )
    return forecast
