"""A deal's fate as a Markov chain: the daily step the simulation draws from, and its exact odds.

Per open stage a deal is healthy or stalled. Each simulated day it moves forwards, is lost,
or flips healthy<->stalled with probabilities that depend on its parameters (``logit``: the
log-odds of moving forwards rather than lost, before the stage's own alpha; ``stall``: the
stall hazard relative to the stage's exit hazard; ``speed``: how fast its clock runs) and on
the calendar (season, quarter-end push) - which scales all of a day's hazards alike, so it
changes timing, not odds. The simulation and ``truth.oracle_win`` share these functions, so
the oracle is exactly the process that drew the outcomes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from salespilot.features.demo.knobs import DemoKnobs
from salespilot.features.demo.world import STAGE_ALPHA, STAGE_DWELL_DAYS

N_STAGES = len(STAGE_ALPHA)
# stalled state: forward, lost, recover hazards relative to the stage's exit hazard
STALL_FORWARD, STALL_LOST, STALL_RECOVER = 0.15, 0.30, 0.20
MAX_DAILY = 0.9  # a day's total move probability is capped (ratios kept)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def day_calendar(start: pd.Timestamp, days: int, knobs: DemoKnobs) -> dict[str, np.ndarray]:
    """Per simulated day: weekday, seasonal speed factor, in the last two weeks of a quarter."""
    index = pd.date_range(start, periods=days + 1, freq="D")
    dip = np.select(
        [index.month == 7, index.month == 8, index.month == 12], [0.25, 0.32, 0.22], 0.0
    )
    q_end = (index + pd.offsets.QuarterEnd(0)).normalize()
    return {
        "weekday": np.asarray(index.weekday),
        "season": np.maximum(0.2, 1.0 - knobs.seasonality * dip),
        "quarter_end": np.asarray((q_end - index).days < 14),
    }


def raw_probs(
    stage: np.ndarray, stalled: np.ndarray, logit: np.ndarray, stall: np.ndarray, speed: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A day's (forwards, lost, flip) probabilities before calendar factors and the cap."""
    sig = sigmoid(STAGE_ALPHA[stage] + logit)
    e = speed / STAGE_DWELL_DAYS[stage]
    p_fwd = np.where(stalled, STALL_FORWARD * sig, sig) * e
    p_lost = np.where(stalled, STALL_LOST, 1 - sig) * e
    p_flip = np.where(stalled, STALL_RECOVER, stall) * e
    return p_fwd, p_lost, p_flip


def _calendar_and_cap(
    probs: tuple[np.ndarray, np.ndarray, np.ndarray], mult: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    f, lo, fl = (x * mult for x in probs)
    tot = f + lo + fl
    scale = np.where(tot > MAX_DAILY, MAX_DAILY / np.maximum(tot, 1e-12), 1.0)
    return f * scale, lo * scale, fl * scale


def step_probs(
    stage: np.ndarray,
    stalled: np.ndarray,
    logit: np.ndarray,
    stall: np.ndarray,
    speed: np.ndarray,
    season: np.ndarray | float,
    quarter_end: np.ndarray | bool,
    knobs: DemoKnobs,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Probabilities of moving forwards, being lost, flipping healthy<->stalled on one day."""
    mult = season * (1.0 + knobs.quarter_end_push * np.asarray(quarter_end) * (stage >= 3))
    return _calendar_and_cap(raw_probs(stage, stalled, logit, stall, speed), mult)


def win_probability(
    stage: np.ndarray, stalled: np.ndarray, logit: np.ndarray, stall: np.ndarray
) -> np.ndarray:
    """Exact probability of ending won from (stage, stalled), whatever the calendar.

    Within a stage the competing hazards give the jump probabilities; solving the two-state
    system (healthy, stalled) stage by stage from the last one back gives the absorption
    probability in ``won``.
    """
    nxt = np.ones(len(stage))
    out = np.zeros(len(stage))
    for s in range(N_STAGES - 1, -1, -1):
        sig = sigmoid(STAGE_ALPHA[s] + logit)
        a_h, l_h, c_h = sig, 1 - sig, stall
        a_c, l_c, r_c = STALL_FORWARD * sig, STALL_LOST, STALL_RECOVER
        d2 = a_c + l_c + r_c
        w_h = nxt * (a_h + c_h * a_c / d2) / (a_h + l_h + c_h - c_h * r_c / d2)
        w_c = (a_c * nxt + r_c * w_h) / d2
        here = stage == s
        out[here] = np.where(stalled[here], w_c[here], w_h[here])
        nxt = w_h
    return out


def win_within(
    stage: np.ndarray,
    stalled: np.ndarray,
    logit: np.ndarray,
    stall: np.ndarray,
    speed: np.ndarray,
    first_day: np.ndarray,
    steps: np.ndarray,
    calendar: dict[str, np.ndarray],
    knobs: DemoKnobs,
) -> np.ndarray:
    """Probability of being won within ``steps`` simulated days starting at ``first_day``.

    Propagates each row's distribution over the 10 open states (+ won) day by day with
    the same daily probabilities the simulation drew from (``step_probs``).
    """
    n = len(stage)
    steps = np.broadcast_to(np.asarray(steps, dtype=np.int64), (n,))
    p = np.zeros((n, 2 * N_STAGES))
    p[np.arange(n), 2 * stage + stalled.astype(np.int64)] = 1.0
    won = np.zeros(n)
    # calendar-free part of each state's daily probabilities, computed once
    base = {
        (s, c): raw_probs(np.full(n, s), np.full(n, bool(c)), logit, stall, speed)
        for s in range(N_STAGES)
        for c in (0, 1)
    }
    last = len(calendar["season"]) - 1
    for step in range(int(steps.max(initial=0))):
        active = step < steps
        day = np.minimum(first_day + step, last)
        season, q_end = calendar["season"][day], calendar["quarter_end"][day]
        new = np.zeros_like(p)
        for s in range(N_STAGES):
            mult = season * (1.0 + knobs.quarter_end_push * q_end * (s >= 3))
            for c in (0, 1):
                f, lo, fl = _calendar_and_cap(base[s, c], mult)
                mass = p[:, 2 * s + c]
                new[:, 2 * s + c] += mass * (1 - f - lo - fl)
                new[:, 2 * s + (1 - c)] += mass * fl
                if s == N_STAGES - 1:
                    won += np.where(active, mass * f, 0.0)
                else:
                    new[:, 2 * (s + 1)] += mass * f
        p = np.where(active[:, None], new, p)
    return won


# ---------------------------------------------------------------- account health and churn
HEALTH_AR, HEALTH_SD = 0.95, 0.25
"""Weekly AR(1) of a customer's health around its own mean: h' = mu + AR (h - mu) + N(0, SD)."""
NEW_CUSTOMER_DAYS = 180
NEW_CUSTOMER_LOGIT, PRODUCT_LOGIT = 0.5, 0.3
CUSTOMER_INBOUND_PER_DAY, CUSTOMER_INBOUND_HEALTH, WEEKEND_SHARE = 0.12, 1.1, 0.2
"""A paying customer's own calls, emails and messages per day: Poisson with mean
``0.12 exp(1.1 health)`` on working days, a fifth of that on weekends."""
CUSTOMER_TOUCH_PER_DAY, CUSTOMER_TOUCH_HEALTH = 0.1, 0.6
"""The owner's check-ins with a paying customer per working day: ``0.1 exp(0.6 health)``."""
STALLED_HEALTH = -1.0
"""A customer below this health behaves like a stalled deal in meetings (postpones, cancels)."""


def meeting_outcome_probabilities(
    stalled: np.ndarray, quality: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(P(postponed), P(cancelled)) of a meeting or demo; the rest are held."""
    p_post = np.where(stalled, 0.55, 0.08 * np.exp(-0.3 * quality))
    p_canc = np.where(stalled, 0.2, 0.03)
    return p_post, p_canc


def expected_survival(
    health: np.ndarray,
    health_mu: np.ndarray,
    week_logit: np.ndarray,
    week_fraction: np.ndarray,
    churn_health_effect: float,
    samples: int = 200,
    seed: int = 0,
) -> np.ndarray:
    """E[prod_k (1 - p_k) ** fraction_k] over future health paths (Monte Carlo, fixed seed).

    ``health``: health in the week before the first future week; ``week_logit[:, k]``: the
    churn log-odds of week k without the health term; ``week_fraction[:, k]``: how much of
    week k the horizon covers (0 past it).
    """
    rng = np.random.default_rng(seed)
    n, weeks = week_logit.shape
    h = np.repeat(health[:, None], samples, axis=1)
    mu = health_mu[:, None]
    log_s = np.zeros((n, samples))
    for k in range(weeks):
        h = mu + HEALTH_AR * (h - mu) + rng.normal(0, HEALTH_SD, (n, samples))
        p = sigmoid(week_logit[:, k : k + 1] - churn_health_effect * h)
        log_s += week_fraction[:, k : k + 1] * np.log1p(-np.minimum(p, 1 - 1e-12))
    return np.exp(log_s).mean(axis=1)
