"""Forward simulation of a B2B sales organisation, day by day, with its ground truth.

Every random draw on day ``d`` depends only on the state at the start of ``d`` (or on events
already drawn earlier that day), never on an outcome that has not happened yet. A deal's fate
is a Markov chain over (stage, healthy/stalled) whose transition probabilities depend on its
latent quality, its owner and its hand-over; its win probability is the chain's exact
absorption probability, recomputed at every state change and written to ``truth/``.
See ``README.md`` next to this file for the story.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from salespilot.features.demo import chain
from salespilot.features.demo.knobs import DemoKnobs
from salespilot.features.demo.world import (
    INDUSTRIES,
    LEAD_SOURCE_QUALITY,
    LEAD_SOURCE_WEIGHTS_REST,
    LEAD_SOURCES,
    PRODUCT_AMOUNT_FACTOR,
    RECURRING_SHARE,
    RECURRING_VALUE_FACTOR,
    STAGE_DWELL_DAYS,
    STAGE_NAMES,
    TEAMS,
    TIMEZONES,
    TZ_INDEX,
    tz_offset_table,
)
from salespilot.features.demo.writer import HistoryWriter

log = logging.getLogger(__name__)

DAY = 86_400
HOUR = 3_600
# channel / direction / outcome codes (indices into the schema's enums)
CALL, EMAIL, MEETING, DEMO, MESSAGE = 0, 1, 2, 3, 4
CHANNEL_NAMES = ("call", "email", "meeting", "demo", "message")
OUT, IN = 0, 1
CONNECTED, NO_ANSWER, REPLIED, NO_REPLY, HELD, POSTPONED, CANCELLED = range(7)
NO_OUTCOME = -1
# truth events
EV_CREATED, EV_STAGE, EV_STALL, EV_RECOVER, EV_OWNER, EV_WON, EV_LOST = range(7)
TRUTH_EVENTS = ("created", "stage", "stalled", "recovered", "owner_change", "won", "lost")

# typical local peak hour of answering calls / replying to email, by contact role
# (decision_maker, influencer, user, other): bosses early, users late morning, ...
ROLE_CALL_PEAK = np.array([8.5, 14.5, 11.0, 16.0])
ROLE_MAIL_PEAK = np.array([7.5, 13.0, 10.0, 17.0])
# outbound touches that are not meetings: call, email, message
TOUCH_MIX = np.array([0.45, 0.48, 0.07])
# meetings / demos scheduled per working day in each open stage (healthy deal, average quality)
MEETING_RATE = np.array([0.0, 0.07, 0.09, 0.06, 0.07])
STAGE_ACTIVITY = np.array([0.8, 1.0, 1.0, 1.0, 1.1])


_sigmoid = chain.sigmoid


class _Grow:
    """Column arrays that grow by doubling (deals, accounts, contacts, reps)."""

    def __init__(self, capacity: int, **dtypes: tuple[np.dtype, object]) -> None:
        self.n = 0
        self._fill = {k: f for k, (_, f) in dtypes.items()}
        for k, (dt, f) in dtypes.items():
            setattr(self, k, np.full(capacity, f, dtype=dt))
        self._names = list(dtypes)

    def add(self, count: int) -> np.ndarray:
        """Reserve ``count`` new rows; returns their indices."""
        need = self.n + count
        cap = len(getattr(self, self._names[0]))
        if need > cap:
            new_cap = max(need, cap * 2)
            for k in self._names:
                old = getattr(self, k)
                arr = np.full(new_cap, self._fill[k], dtype=old.dtype)
                arr[: self.n] = old[: self.n]
                setattr(self, k, arr)
        idx = np.arange(self.n, need)
        self.n = need
        return idx


class Simulation:
    """State and day loop of one generated history (use :func:`generate_history`)."""

    def __init__(
        self,
        *,
        reps: int,
        months: int,
        seed: int,
        end: pd.Timestamp,
        knobs: DemoKnobs,
        writer: HistoryWriter,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.k = knobs
        self.rng = np.random.default_rng(seed)
        self.end = end
        self.start = (end - pd.DateOffset(months=months)).floor("D")
        self.start_s = int(self.start.value // 10**9)
        self.end_s = int(self.end.value // 10**9)
        self.days = -(-(self.end_s - self.start_s) // DAY)
        self.writer = writer
        self.progress = progress
        self.meta: dict = {}
        self.tz_changes, self.tz_offsets = tz_offset_table(self.start, self.end)
        self._tz_base = self.start_s - 10 * DAY
        self._tz_stride = np.int64(1) << np.int64(40)
        self._tz_keys = np.concatenate(
            [
                z * self._tz_stride + np.maximum(ch - self._tz_base, 0)
                for z, ch in enumerate(self.tz_changes)
            ]
        )
        self._tz_vals = np.concatenate(self.tz_offsets)
        # per-day calendar: weekday, seasonal factor, last two weeks of a quarter
        self.cal = chain.day_calendar(self.start, self.days, knobs)
        # offset of each zone at each day's noon UTC, for "local midnight" of working days
        noon = self.start_s + np.arange(self.days + 2) * DAY + 12 * HOUR
        self.noon_offset = np.stack(
            [self._local_offset(np.full(len(noon), z), noon) for z in range(len(TIMEZONES))]
        )
        self._team_params(knobs)
        # how well each industry fits each team's offer: an observable part of deal quality
        self.industry_fit = self.rng.normal(0, knobs.industry_fit_sd, (len(TEAMS), len(INDUSTRIES)))
        # each industry's working week: some answer on Mondays, others hide until Wednesday
        self.industry_week = np.exp(self.rng.normal(0, 0.1, (len(INDUSTRIES), 5)))
        self.role_week = np.exp(self.rng.normal(0, 0.25, (4, 5)))
        self._init_tables(reps)

    # ------------------------------------------------------------------ set-up
    def _team_params(self, k: DemoKnobs) -> None:
        med = np.array([t.median_amount for t in TEAMS])
        geo = np.exp(np.log(med).mean())
        c = k.region_contrast
        self.team_amount = geo * (med / geo) ** c
        self.team_cycle = np.array([t.cycle for t in TEAMS]) ** c
        self.team_offset = np.array([t.offset for t in TEAMS]) * c
        self.team_products = np.array([t.products for t in TEAMS])
        self.team_rep_tz = np.array([TZ_INDEX[t.rep_tz] for t in TEAMS])
        self.team_employees = np.array([t.employees for t in TEAMS])
        src = (
            LEAD_SOURCE_WEIGHTS_REST / LEAD_SOURCE_WEIGHTS_REST.sum() * (1 - k.strong_source_share)
        )
        src[0] = k.strong_source_share
        self.source_weights = src
        self.source_quality = LEAD_SOURCE_QUALITY.copy()
        self.source_quality[0] = k.strong_source_boost

    def _init_tables(self, n_reps: int) -> None:
        est_deals = int(n_reps * (self.days / 30.4) * self.k.deals_per_rep_month * 1.3) + 100
        est_acc = int(est_deals * 0.8 + n_reps * self.k.initial_customers_per_rep) + 100
        i64, f64, i32, i8, b = np.int64, np.float64, np.int32, np.int8, np.bool_
        self.reps = _Grow(
            n_reps * 2 + 8,
            team=(i32, 0),
            skill=(f64, 0.0),
            hired=(i64, 0),
            left=(i64, -1),
            peak_hour=(f64, 11.0),
            manager=(i32, 0),
        )
        self.acc = _Grow(
            est_acc,
            team=(i32, 0),
            owner=(i32, 0),
            created=(i64, 0),
            industry=(i32, 0),
            employees=(i64, 0),
            tz=(i32, 0),
            c_start=(i64, 0),
            n_nondm=(i32, 1),
            has_dm=(b, False),
            health=(f64, 0.0),
            health_mu=(f64, 0.0),
            value=(f64, 0.0),
            n_subs=(i32, 0),
            customer_since=(i64, -1),
            bad_until=(i64, -1),
            silent_until=(i64, -1),
        )
        self.con = _Grow(
            int(est_acc * 2.2) + 10,
            account=(i32, 0),
            role=(i8, 0),
            tz=(i32, 0),
            base_call=(f64, 0.3),
            peak_call=(f64, 11.0),
            width_call=(f64, 2.0),
            base_mail=(f64, 0.3),
            peak_mail=(f64, 10.0),
            width_mail=(f64, 3.0),
            wd0=(f64, 1.0),
            wd1=(f64, 1.0),
            wd2=(f64, 1.0),
            wd3=(f64, 1.0),
            wd4=(f64, 1.0),
        )
        self.deal = _Grow(
            est_deals,
            account=(i32, 0),
            owner=(i32, 0),
            team=(i32, 0),
            product=(i8, 0),
            source=(i8, 0),
            amount=(f64, 0.0),
            created=(i64, 0),
            expected=(i64, -1),
            closed=(i64, -1),
            status=(i8, 0),  # 0 open, 1 won, 2 lost
            stage=(i8, 0),
            stalled=(b, False),
            quality=(f64, 0.0),
            dm=(b, False),
            bad=(b, False),
            pace=(f64, 1.0),
            last_event=(i64, 0),
            silent_until=(i64, -1),
            p_win=(f64, 0.0),
        )
        self.subs: dict[str, list] = {
            k: [] for k in ("account", "product", "start", "end", "value")
        }
        self.acc_subs: dict[int, list[int]] = {}
        self.rep_accounts: dict[int, list[int]] = {}
        self.stage_rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.truth_rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.churn_rows: list[tuple[np.ndarray, int, int, np.ndarray, np.ndarray]] = []
        self.act_chunks: list[dict[str, np.ndarray]] = []
        self.pending_hires: list[tuple[int, int]] = []  # (day, team)

    # ------------------------------------------------------------------ helpers
    def _local_offset(self, tz: np.ndarray, t: np.ndarray) -> np.ndarray:
        """UTC offset in seconds of time zones ``tz`` at UTC instants ``t`` (DST-correct)."""
        # one searchsorted over all zones: keys are (zone, instant) packed into one int64
        key = np.asarray(tz, dtype=np.int64) * self._tz_stride + (
            np.asarray(t, dtype=np.int64) - self._tz_base
        )
        i = np.searchsorted(self._tz_keys, key, side="right") - 1
        return self._tz_vals[i]

    def _local_slot(self, tz: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Local weekday (0=Mon) and hour of UTC instants in the given zones."""
        local = t + self._local_offset(tz, t)
        days = local // DAY
        return ((days + 3) % 7).astype(np.int64), ((local % DAY) // HOUR).astype(np.int64)

    def _rep_work_time(self, reps: np.ndarray, day_s: int, spread: float = 2.3) -> np.ndarray:
        """A time during the reps' working day (their local clock), as UTC seconds."""
        tz = self.team_rep_tz[self.reps.team[reps]]
        h = self.reps.peak_hour[reps] + self.rng.normal(0, spread, len(reps))
        h = np.clip(h, 8.0, 18.98)
        local_midnight = day_s - self.noon_offset[tz, self._day(day_s)]
        return local_midnight + (h * HOUR).astype(np.int64)

    def contact_p(self, c: np.ndarray, wd: np.ndarray, hr: np.ndarray, email: np.ndarray):
        """True connect (call) / 24 h reply (email) probability of contacts at local slots."""
        C = self.con
        s = self.k.hour_pattern_strength
        wdf = np.ones(len(c))
        for d in range(5):
            m = wd == d
            wdf[m] = getattr(C, f"wd{d}")[c[m]]
        wdf[wd >= 5] = 0.25
        peak = np.where(email, C.peak_mail[c], C.peak_call[c])
        width = np.where(email, C.width_mail[c], C.width_call[c])
        base = np.where(email, C.base_mail[c], C.base_call[c])
        bump = np.exp(-0.5 * ((hr + 0.5 - peak) / width) ** 2)
        shape = (1 - 0.75 * s) + 0.75 * s * bump
        night = (hr < 7) | (hr >= 21)
        shape = np.where(night & ~email, shape * 0.25, shape)
        return np.clip(base * wdf**s * shape * 1.2, 0.005, 0.9)

    def deal_params(self, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The chain parameters of deals ``d`` now: (logit, stall, speed), see ``chain``."""
        D, k = self.deal, self.k
        logit = (
            self.team_offset[D.team[d]]
            + k.quality_effect * D.quality[d]
            + self.reps.skill[D.owner[d]]
            + k.dm_effect * (D.dm[d] - 0.5)
            - k.handover_penalty * D.bad[d]
        )
        stall = k.stall_rate * np.exp(-0.7 * D.quality[d]) * (1.0 + D.bad[d])
        speed = 1.0 / (self.team_cycle[D.team[d]] * D.pace[d])
        return logit, stall, speed

    def p_win(self, d: np.ndarray) -> np.ndarray:
        """Exact probability that deals ``d`` end won, given their current state."""
        logit, stall, _ = self.deal_params(d)
        return chain.win_probability(
            self.deal.stage[d].astype(np.int64), self.deal.stalled[d], logit, stall
        )

    def _day(self, t0: int) -> int:
        return (t0 - self.start_s) // DAY

    def _season(self, day_s: int) -> float:
        return float(self.cal["season"][self._day(day_s)])

    def _weekday(self, day_s: int) -> int:
        return int(self.cal["weekday"][self._day(day_s)])

    def _truth(self, d: np.ndarray, t: np.ndarray, ev: int) -> None:
        D = self.deal
        logit, stall, speed = self.deal_params(d)
        stage = D.stage[d].astype(np.int64)
        p = chain.win_probability(stage, D.stalled[d], logit, stall)
        D.p_win[d] = p
        self.truth_rows.append(
            (
                d.copy(),
                t.copy(),
                p,
                np.full(len(d), ev, dtype=np.int8),
                stage,
                D.stalled[d].copy(),
                logit,
                stall,
                speed,
            )
        )

    # ------------------------------------------------------------------ entities
    def add_reps(self, teams: np.ndarray, hired: np.ndarray) -> np.ndarray:
        R = self.reps
        idx = R.add(len(teams))
        R.team[idx] = teams
        R.skill[idx] = self.rng.normal(0, self.k.skill_sd, len(idx))
        R.hired[idx] = hired
        R.peak_hour[idx] = self.rng.uniform(9.0, 16.5, len(idx))
        R.manager[idx] = teams
        for r in idx:
            self.rep_accounts[int(r)] = []
        return idx

    def add_accounts(
        self, teams: np.ndarray, owners: np.ndarray, created: np.ndarray
    ) -> np.ndarray:
        A, rng = self.acc, self.rng
        n = len(teams)
        idx = A.add(n)
        A.team[idx] = teams
        A.owner[idx] = owners
        A.created[idx] = created
        A.industry[idx] = rng.integers(0, len(INDUSTRIES), n)
        A.employees[idx] = np.maximum(
            2, (self.team_employees[teams] * np.exp(rng.normal(0, 0.9, n))).astype(np.int64)
        )
        tz = np.empty(n, dtype=np.int32)
        for i, t in enumerate(teams):
            zones, w = zip(*TEAMS[t].contact_tz, strict=True)
            tz[i] = TZ_INDEX[zones[rng.choice(len(zones), p=np.array(w) / sum(w))]]
        foreign = rng.random(n) < 0.1
        tz[foreign] = rng.integers(0, len(TIMEZONES), foreign.sum())
        A.tz[idx] = tz
        n_nondm = 1 + (rng.random(n) < 0.4).astype(np.int32)
        has_dm = rng.random(n) < 0.7
        A.n_nondm[idx] = n_nondm
        A.has_dm[idx] = has_dm
        A.health_mu[idx] = rng.normal(0.0, 0.6, n)
        A.health[idx] = A.health_mu[idx]
        n_con = n_nondm + has_dm
        C = self.con
        cidx = C.add(int(n_con.sum()))
        A.c_start[idx] = cidx[0] + np.r_[0, np.cumsum(n_con)[:-1]]
        acc_of = np.repeat(idx, n_con)
        C.account[cidx] = acc_of
        pos = cidx - np.repeat(A.c_start[idx], n_con)
        is_dm = pos >= np.repeat(n_nondm, n_con)
        role = np.where(is_dm, 0, np.where(rng.random(len(cidx)) < 0.5, 1, 2))
        role = np.where(~is_dm & (rng.random(len(cidx)) < 0.1), 3, role)
        C.role[cidx] = role
        same = rng.random(len(cidx)) < 0.9
        C.tz[cidx] = np.where(same, A.tz[acc_of], rng.integers(0, len(TIMEZONES), len(cidx)))
        m = len(cidx)
        # answer patterns: typical for the role (and the industry's week), plus a personal part
        sd = self.k.personal_hour_sd
        C.base_call[cidx] = np.clip(rng.beta(3, 6, m) * np.where(is_dm, 0.75, 1.0), 0.03, 0.8)
        C.peak_call[cidx] = np.clip(ROLE_CALL_PEAK[role] + rng.normal(0, sd, m), 7.5, 19.5)
        C.width_call[cidx] = rng.uniform(1.5, 3.0, m)
        C.base_mail[cidx] = np.clip(rng.beta(3, 5, m) * np.where(is_dm, 0.8, 1.0), 0.03, 0.8)
        C.peak_mail[cidx] = np.clip(ROLE_MAIL_PEAK[role] + rng.normal(0, sd, m), 6.0, 22.0)
        C.width_mail[cidx] = rng.uniform(1.5, 4.5, m)
        industry = A.industry[acc_of]
        wd = (
            self.role_week[role]
            * self.industry_week[industry]
            * np.exp(rng.normal(0, 0.08, (m, 5)))
        )
        for d in range(5):
            getattr(C, f"wd{d}")[cidx] = wd[:, d]
        for a, o in zip(idx, owners, strict=True):
            self.rep_accounts[int(o)].append(int(a))
        return idx

    def add_subscription(self, account: int, product: int, start: int, value: float) -> None:
        A = self.acc
        if A.value[account] <= 0:
            # a (re)new customer: its health starts from a fresh draw around its mean
            A.customer_since[account] = start
            A.health[account] = A.health_mu[account] + self.rng.normal(0, 0.4)
        s = self.subs
        self.acc_subs.setdefault(account, []).append(len(s["account"]))
        s["account"].append(account)
        s["product"].append(product)
        s["start"].append(start)
        s["end"].append(-1)
        s["value"].append(value)
        A.value[account] += value
        A.n_subs[account] += 1

    # ------------------------------------------------------------------ world at start
    def seed_world(self, n_reps: int) -> None:
        rng, k = self.rng, self.k
        teams = np.arange(n_reps) % len(TEAMS)
        tenure_days = np.where(
            rng.random(n_reps) < 0.2, rng.uniform(10, 180, n_reps), rng.uniform(180, 2200, n_reps)
        )
        hired = (self.start_s - tenure_days * DAY).astype(np.int64) // DAY * DAY
        reps = self.add_reps(teams, hired)
        n_init = k.initial_customers_per_rep
        if n_init <= 0:
            return
        owners = np.repeat(reps, n_init)
        created = self.start_s - rng.uniform(90, 1500, len(owners)).astype(np.int64) * DAY
        acc = self.add_accounts(self.reps.team[owners], owners, created)
        A = self.acc
        A.health_mu[acc] = rng.normal(0.2, 0.6, len(acc))
        for a in acc:
            team = int(A.team[a])
            mix = self.team_products[team] * RECURRING_SHARE
            mix = mix / mix.sum() if mix.sum() > 0 else np.array([0, 1.0, 0, 0])
            n_sub = 1 + int(rng.random() < 0.3)
            for j in range(n_sub):
                prod = int(rng.choice(4, p=mix)) if j == 0 else 2
                start = int(A.created[a]) + int(rng.uniform(10, 60)) * DAY
                start = min(start, self.start_s - DAY)
                amount = (
                    self.team_amount[team]
                    * PRODUCT_AMOUNT_FACTOR[prod]
                    * np.exp(rng.normal(0, 0.5))
                )
                value = round(float(amount * max(RECURRING_VALUE_FACTOR[prod], 0.2) / 12), 2)
                self.add_subscription(int(a), prod, start, value)

    # ------------------------------------------------------------------ the day loop
    def run(self, days: range | None = None) -> None:
        """Simulate ``days`` (default all of them, in order; a later range continues where an
        earlier one stopped, as a what-if replay from a copy of the state does)."""
        for day in range(self.days) if days is None else days:
            t0 = self.start_s + day * DAY
            if day % 7 == 0:
                self._week(t0)
            self._hires(day, t0)
            self._leavers(t0)
            self._deal_transitions(t0)
            self._deal_activities(t0)
            self._customer_activities(t0)
            self._new_deals(t0)
            if (day + 1) % 30 == 0 or day == self.days - 1:
                self._flush_activities(final=day == self.days - 1)
            if self.progress is not None:
                self.progress(day + 1, self.days)

    # weekly: account health drifts, churn drawn for the coming week
    def _week(self, t0: int) -> None:
        A, rng, k = self.acc, self.rng, self.k
        n = A.n
        if n == 0:
            return
        A.health[:n] = (
            A.health_mu[:n]
            + chain.HEALTH_AR * (A.health[:n] - A.health_mu[:n])
            + rng.normal(0, chain.HEALTH_SD, n)
        )
        active = np.flatnonzero(A.value[:n] > 0)
        if len(active) == 0:
            return
        p_end = min(t0 + 7 * DAY, self.end_s)
        new_until = A.customer_since[active] + chain.NEW_CUSTOMER_DAYS * DAY
        static = np.log(k.weekly_churn_base / (1 - k.weekly_churn_base)) - chain.PRODUCT_LOGIT * (
            A.n_subs[active] - 1
        ).clip(0, 3)
        logit = (
            static
            - k.churn_health_effect * A.health[active]
            + k.handover_penalty * (A.bad_until[active] > t0)
            + chain.NEW_CUSTOMER_LOGIT * (new_until > t0)
        )
        p = _sigmoid(logit)
        frac = (p_end - t0) / (7 * DAY)
        p = 1 - (1 - p) ** frac
        churn = rng.random(len(active)) < p
        self.churn_rows.append(
            (
                active.copy(),
                t0,
                p_end,
                p,
                churn,
                A.health[active].copy(),
                A.health_mu[active].copy(),
                static,
                A.bad_until[active].copy(),
                new_until,
            )
        )
        when = t0 + (rng.random(len(active)) * (p_end - t0)).astype(np.int64)
        for a, tau in zip(active[churn], when[churn], strict=True):
            self._churn_account(int(a), int(tau))

    def _churn_account(self, a: int, tau: int) -> None:
        s = self.subs
        for i in self.acc_subs.get(a, []):
            if s["end"][i] < 0 and s["start"][i] < tau:
                s["end"][i] = tau
        self.acc.value[a] = 0.0
        self.acc.n_subs[a] = 0

    def _hires(self, day: int, t0: int) -> None:
        due = [team for d, team in self.pending_hires if d == day]
        if due:
            self.add_reps(np.array(due, dtype=np.int32), np.full(len(due), t0, dtype=np.int64))
            self.pending_hires = [(d, t) for d, t in self.pending_hires if d != day]

    def _active_reps(self, t0: int) -> np.ndarray:
        R = self.reps
        n = R.n
        return np.flatnonzero((R.left[:n] < 0) & (R.hired[:n] <= t0))

    def _leavers(self, t0: int) -> None:
        R, rng, k = self.reps, self.rng, self.k
        active = self._active_reps(t0)
        leaving = active[rng.random(len(active)) < k.leaver_rate_per_year / 365.0]
        for r in leaving:
            r = int(r)
            left = t0 + 3 * HOUR
            R.left[r] = left
            team = int(R.team[r])
            day = (t0 - self.start_s) // DAY
            self.pending_hires.append((day + int(rng.integers(20, 41)), team))
            mates = active[(R.team[active] == team) & (R.left[active] < 0)]
            if len(mates) == 0:
                mates = self._active_reps(t0)
                mates = mates[R.left[mates] < 0]
            if len(mates) == 0:
                continue
            bad = bool(rng.random() < k.bad_handover_share)
            self._hand_over(r, mates, left, t0, bad)

    def _hand_over(self, r: int, mates: np.ndarray, left: int, t0: int, bad: bool) -> None:
        D, A, rng = self.deal, self.acc, self.rng
        deals = np.flatnonzero((D.owner[: D.n] == r) & (D.status[: D.n] == 0))
        accounts = np.array(self.rep_accounts.pop(r, []), dtype=np.int64)
        self.rep_accounts[r] = []
        new_acc_owner = mates[rng.integers(0, len(mates), len(accounts))]
        A.owner[accounts] = new_acc_owner
        for a, o in zip(accounts, new_acc_owner, strict=True):
            self.rep_accounts[int(o)].append(int(a))
        # deals follow their account's new owner (one owner per account)
        if len(deals):
            D.owner[deals] = A.owner[D.account[deals]]
            D.bad[deals] |= bad  # damage done by an earlier bad hand-over stays
            D.silent_until[deals] = t0 + (22 * DAY if bad else DAY)
            D.last_event[deals] = np.maximum(D.last_event[deals], left)
            self._truth(deals, np.full(len(deals), left, dtype=np.int64), EV_OWNER)
        cust = accounts[A.value[accounts] > 0]
        if bad:
            A.health[cust] -= 0.8 * self.k.handover_penalty
            A.bad_until[cust] = left + 90 * DAY
            A.silent_until[cust] = left + 30 * DAY
        else:
            A.silent_until[cust] = t0 + DAY
        # a good hand-over is one introduction meeting per deal / customer by the new owner
        if not bad:
            touch_acc = np.r_[D.account[deals], cust].astype(np.int64)
            touch_opp = np.r_[deals, np.full(len(cust), -1)].astype(np.int64)
            if len(touch_acc):
                owners = A.owner[touch_acc]
                times = self._rep_work_time(owners, t0 + DAY * int(rng.integers(1, 3)))
                contacts = A.c_start[touch_acc] + rng.integers(0, A.n_nondm[touch_acc])
                ok = times < self.end_s
                self._emit(
                    times[ok],
                    owners[ok],
                    touch_acc[ok],
                    contacts[ok],
                    touch_opp[ok],
                    np.full(ok.sum(), MEETING),
                    np.full(ok.sum(), OUT),
                    np.full(ok.sum(), HELD),
                    rng.uniform(1200, 3000, ok.sum()),
                    np.full(ok.sum(), np.nan),
                )
                has = touch_opp[ok] >= 0
                od = touch_opp[ok][has]
                D.last_event[od] = np.maximum(D.last_event[od], times[ok][has])

    def _deal_transitions(self, t0: int) -> None:
        D, rng, k = self.deal, self.rng, self.k
        d = np.flatnonzero(D.status[: D.n] == 0)
        if len(d) == 0:
            return
        logit, stall, speed = self.deal_params(d)
        day = self._day(t0)
        p_fwd, p_lost, p_flip = chain.step_probs(
            D.stage[d].astype(np.int64),
            D.stalled[d],
            logit,
            stall,
            speed,
            self.cal["season"][day],
            self.cal["quarter_end"][day],
            k,
        )
        u = rng.random(len(d))
        fwd = u < p_fwd
        lost = (u >= p_fwd) & (u < p_fwd + p_lost)
        flip = (u >= p_fwd + p_lost) & (u < p_fwd + p_lost + p_flip)
        moved = fwd | lost | flip
        if not moved.any():
            return
        m = d[moved]
        t = np.maximum(t0 + rng.integers(7 * HOUR, 21 * HOUR, len(m)), D.last_event[m] + 60)
        t = np.minimum(t, self.end_s - 1)
        D.last_event[m] = t
        tm = dict(zip(m.tolist(), t.tolist(), strict=True))
        # stalls and recoveries
        fl = d[flip]
        if len(fl):
            D.stalled[fl] = ~D.stalled[fl]
            tf = np.array([tm[x] for x in fl.tolist()], dtype=np.int64)
            rec = ~D.stalled[fl]
            if (~rec).any():
                self._truth(fl[~rec], tf[~rec], EV_STALL)
            if rec.any():
                self._truth(fl[rec], tf[rec], EV_RECOVER)
        lo = d[lost]
        if len(lo):
            tl = np.array([tm[x] for x in lo.tolist()], dtype=np.int64)
            self._close(lo, tl, won=False)
        fw = d[fwd]
        if len(fw):
            tw = np.array([tm[x] for x in fw.tolist()], dtype=np.int64)
            D.stalled[fw] = False
            done = D.stage[fw] == 4
            if done.any():
                self._close(fw[done], tw[done], won=True)
            adv = fw[~done]
            if len(adv):
                D.stage[adv] += 1
                self.stage_rows.append((adv.copy(), tw[~done], D.stage[adv].astype(np.int8)))
                self._truth(adv, tw[~done], EV_STAGE)

    def _close(self, d: np.ndarray, t: np.ndarray, *, won: bool) -> None:
        D = self.deal
        D.status[d] = 1 if won else 2
        D.closed[d] = t
        D.p_win[d] = 1.0 if won else 0.0
        code = 5 if won else 6
        self.stage_rows.append((d.copy(), t.copy(), np.full(len(d), code, dtype=np.int8)))
        nan = np.full(len(d), np.nan)
        self.truth_rows.append(
            (
                d.copy(),
                t.copy(),
                np.full(len(d), float(won)),
                np.full(len(d), EV_WON if won else EV_LOST, np.int8),
                np.full(len(d), code, dtype=np.int64),
                np.zeros(len(d), dtype=bool),
                nan,
                nan,
                nan,
            )
        )
        if not won:
            return
        rng = self.rng
        for x, tx in zip(d.tolist(), t.tolist(), strict=True):
            prod = int(D.product[x])
            if rng.random() < RECURRING_SHARE[prod]:
                value = round(float(D.amount[x] * RECURRING_VALUE_FACTOR[prod] / 12), 2)
                self.add_subscription(int(D.account[x]), prod, int(tx), value)

    def _deal_activities(self, t0: int) -> None:
        D, R, A, rng, k = self.deal, self.reps, self.acc, self.rng, self.k
        d = np.flatnonzero(D.status[: D.n] == 0)
        closed_today = np.flatnonzero((D.closed[: D.n] >= t0) & (D.closed[: D.n] < t0 + DAY))
        d = np.r_[d, closed_today]
        if len(d) == 0:
            return
        weekday = self._weekday(t0)
        workday = weekday < 5
        season = 0.6 + 0.4 * self._season(t0)
        q = D.quality[d]
        stalled = D.stalled[d]
        engaged = np.where(stalled, 0.2, np.exp(0.45 * q))
        awake = (D.silent_until[d] <= t0) * workday
        lam_out = k.activity_rate * STAGE_ACTIVITY[D.stage[d]] * engaged * season * awake
        # stalled deals keep (re)scheduling meetings, which then get postponed or cancelled
        lam_meet = MEETING_RATE[D.stage[d]] * np.where(stalled, 0.8, np.exp(0.2 * q)) * awake
        lam_in = 0.08 * np.where(stalled, 0.15, np.exp(0.7 * q)) * (1.0 if workday else 0.25)
        n_out = rng.poisson(lam_out)
        n_meet = rng.poisson(lam_meet)
        n_in = rng.poisson(lam_in)
        # outbound: calls, emails, messages, then meetings and demos
        touch = np.array([CALL, EMAIL, MESSAGE])[
            (rng.random(int(n_out.sum()))[:, None] > TOUCH_MIX.cumsum()).sum(axis=1).clip(0, 2)
        ]
        od = np.r_[np.repeat(d, n_out), np.repeat(d, n_meet)]
        if len(od):
            meet = np.repeat(d, n_meet)
            demo = (D.stage[meet] == 2) & (rng.random(len(meet)) < 0.7)
            ch = np.r_[touch, np.where(demo, DEMO, MEETING)]
            owners = D.owner[od]
            times = self._rep_work_time(owners, t0)
            contacts = self._pick_contact(od)
            eng = np.where(D.stalled[od], 0.55, np.exp(k.engagement_effect * D.quality[od]))
            self._outbound(
                times, owners, D.account[od], contacts, od, ch, eng, D.stalled[od], D.quality[od]
            )
        # inbound (the customer reaching out)
        idd = np.repeat(d, n_in)
        if len(idd):
            contacts = self._pick_contact(idd)
            times = self._contact_time(contacts, t0)
            ch = rng.choice(np.array([EMAIL, CALL, MESSAGE]), len(idd), p=[0.6, 0.3, 0.1])
            out = np.where(ch == CALL, CONNECTED, NO_OUTCOME)
            dur = np.where(ch == CALL, rng.lognormal(5.5, 0.7, len(idd)), np.nan)
            self._emit(
                times,
                D.owner[idd],
                D.account[idd],
                contacts,
                idd,
                ch,
                np.full(len(idd), IN),
                out,
                dur,
                np.full(len(idd), np.nan),
            )
        del R, A

    def _pick_contact(self, od: np.ndarray) -> np.ndarray:
        D, A, rng = self.deal, self.acc, self.rng
        acc = D.account[od]
        use_dm = D.dm[od] & A.has_dm[acc] & (rng.random(len(od)) < 0.4)
        nondm = A.c_start[acc] + (rng.random(len(od)) * A.n_nondm[acc]).astype(np.int64)
        return np.where(use_dm, A.c_start[acc] + A.n_nondm[acc], nondm)

    def _contact_time(self, contacts: np.ndarray, t0: int) -> np.ndarray:
        tz = self.con.tz[contacts]
        h = self.rng.uniform(7.5, 19.0, len(contacts))
        local_midnight = t0 - self.noon_offset[tz, self._day(t0)]
        return local_midnight + (h * HOUR).astype(np.int64)

    def _outbound(self, times, owners, accounts, contacts, opps, ch, eng, stalled, quality) -> None:
        """Outbound touches: draw each attempt's outcome from its true probability."""
        rng = self.rng
        n = len(times)
        wd, hr = self._local_slot(self.con.tz[contacts], times)
        is_mail = ch == EMAIL
        attempt = (ch == CALL) | is_mail
        p = np.full(n, np.nan)
        if attempt.any():
            p[attempt] = np.clip(
                self.contact_p(contacts[attempt], wd[attempt], hr[attempt], is_mail[attempt])
                * eng[attempt],
                0.005,
                0.9,
            )
        u = rng.random(n)
        success = attempt & (u < np.nan_to_num(p))
        outcome = np.full(n, NO_OUTCOME)
        dur = np.full(n, np.nan)
        is_call = ch == CALL
        outcome[is_call] = np.where(success[is_call], CONNECTED, NO_ANSWER)
        dur[is_call] = np.where(
            success[is_call],
            rng.lognormal(5.6, 0.8, is_call.sum()),
            rng.uniform(5, 35, is_call.sum()),
        )
        # emails: a reply within 24 h with probability p, else maybe a late one
        reply_delay = np.full(n, -1, dtype=np.int64)
        fast = is_mail & success
        reply_delay[fast] = (np.minimum(rng.exponential(3.0, fast.sum()), 23.9) * HOUR).astype(
            np.int64
        ) + 60
        late = is_mail & ~success & (rng.random(n) < 0.12)
        reply_delay[late] = (rng.uniform(24.2, 96.0, late.sum()) * HOUR).astype(np.int64)
        reply_at = times + reply_delay
        outcome[is_mail] = np.where(fast[is_mail], REPLIED, NO_REPLY)
        # what the CRM knows at the end: no reply yet for a recent email is not yet a no_reply
        unknown = is_mail & (times + DAY > self.end_s) & ~(fast & (reply_at < self.end_s))
        outcome[unknown] = NO_OUTCOME
        # meetings and demos: stalled deals postpone and cancel
        meet = (ch == MEETING) | (ch == DEMO)
        if meet.any():
            um = rng.random(meet.sum())
            st = stalled[meet]
            qm = quality[meet]
            p_post, p_canc = chain.meeting_outcome_probabilities(st, qm)
            oc = np.where(um < p_post, POSTPONED, np.where(um < p_post + p_canc, CANCELLED, HELD))
            outcome[meet] = oc
            dur[meet] = np.where(oc == HELD, rng.uniform(1500, 3900, meet.sum()), np.nan)
        self._emit(times, owners, accounts, contacts, opps, ch, np.full(n, OUT), outcome, dur, p)
        rep_ok = reply_delay > 0
        rep_ok &= reply_at < self.end_s
        if rep_ok.any():
            m = rep_ok
            self._emit(
                reply_at[m],
                owners[m],
                accounts[m],
                contacts[m],
                opps[m],
                np.full(m.sum(), EMAIL),
                np.full(m.sum(), IN),
                np.full(m.sum(), NO_OUTCOME),
                np.full(m.sum(), np.nan),
                np.full(m.sum(), np.nan),
            )

    def _emit(self, times, reps, accounts, contacts, opps, ch, direction, outcome, dur, p) -> None:
        keep = (times < self.end_s) & (times >= self.start_s)
        opps = np.asarray(opps, dtype=np.int64)
        # a deal-linked touch after the deal closed does not happen
        has = opps >= 0
        if has.any():
            closed = np.full(len(opps), -1, dtype=np.int64)
            closed[has] = self.deal.closed[opps[has]]
            keep &= ~(has & (closed >= 0) & (times >= closed) & (direction == OUT))
        if not keep.all():
            sel = np.flatnonzero(keep)
            times, reps, accounts, contacts, opps = (
                times[sel],
                reps[sel],
                accounts[sel],
                contacts[sel],
                opps[sel],
            )
            ch, direction, outcome, dur, p = ch[sel], direction[sel], outcome[sel], dur[sel], p[sel]
        if len(times) == 0:
            return
        mine = (opps >= 0) & (direction == OUT)
        if mine.any():
            # later stage changes of the deal come after its owner's last touch
            np.maximum.at(self.deal.last_event, opps[mine], times[mine])
        self.act_chunks.append(
            {
                "t": np.asarray(times, np.int64),
                "rep": np.asarray(reps, np.int64),
                "acc": np.asarray(accounts, np.int64),
                "con": np.asarray(contacts, np.int64),
                "opp": opps,
                "ch": np.asarray(ch, np.int8),
                "dir": np.asarray(direction, np.int8),
                "out": np.asarray(outcome, np.int8),
                "dur": np.asarray(dur, np.float64),
                "p": np.asarray(p, np.float64),
            }
        )

    def _customer_activities(self, t0: int) -> None:
        A, rng = self.acc, self.rng
        n = A.n
        c = np.flatnonzero(A.value[:n] > 0)
        if len(c) == 0:
            return
        weekday = self._weekday(t0)
        workday = weekday < 5
        h = A.health[c]
        awake = A.silent_until[c] <= t0
        n_out = rng.poisson(
            chain.CUSTOMER_TOUCH_PER_DAY * np.exp(chain.CUSTOMER_TOUCH_HEALTH * h) * awake * workday
        )
        n_in = rng.poisson(
            chain.CUSTOMER_INBOUND_PER_DAY
            * np.exp(chain.CUSTOMER_INBOUND_HEALTH * h)
            * (1.0 if workday else chain.WEEKEND_SHARE)
        )
        oa = np.repeat(c, n_out)
        if len(oa):
            owners = A.owner[oa]
            times = self._rep_work_time(owners, t0)
            ch = rng.choice(np.array([CALL, EMAIL, MEETING]), len(oa), p=[0.45, 0.4, 0.15])
            contacts = A.c_start[oa] + (
                rng.random(len(oa)) * (A.n_nondm[oa] + A.has_dm[oa])
            ).astype(np.int64)
            eng = np.exp(self.k.engagement_effect * A.health[oa])
            stalled = A.health[oa] < chain.STALLED_HEALTH
            self._outbound(
                times, owners, oa, contacts, np.full(len(oa), -1), ch, eng, stalled, A.health[oa]
            )
        ia = np.repeat(c, n_in)
        if len(ia):
            contacts = A.c_start[ia] + (
                rng.random(len(ia)) * (A.n_nondm[ia] + A.has_dm[ia])
            ).astype(np.int64)
            times = self._contact_time(contacts, t0)
            ch = rng.choice(np.array([EMAIL, CALL, MESSAGE]), len(ia), p=[0.65, 0.25, 0.1])
            out = np.where(ch == CALL, CONNECTED, NO_OUTCOME)
            dur = np.where(ch == CALL, rng.lognormal(5.3, 0.7, len(ia)), np.nan)
            nan = np.full(len(ia), np.nan)
            self._emit(
                times,
                A.owner[ia],
                ia,
                contacts,
                np.full(len(ia), -1),
                ch,
                np.full(len(ia), IN),
                out,
                dur,
                nan,
            )

    def _new_deals(self, t0: int) -> None:
        R, D, A, rng, k = self.reps, self.deal, self.acc, self.rng, self.k
        weekday = self._weekday(t0)
        if weekday >= 5:
            return
        reps = self._active_reps(t0)
        reps = reps[R.hired[reps] <= t0]
        if len(reps) == 0:
            return
        tenure_m = (t0 - R.hired[reps]) / (30.4 * DAY)
        ramp = np.clip(0.25 + 0.75 * tenure_m / max(k.ramp_months, 1e-6), 0.25, 1.0)
        lam = k.deals_per_rep_month * 12 / 250 * ramp * self._season(t0)
        n = rng.poisson(lam)
        owners = np.repeat(reps, n)
        ramp_o = np.repeat(ramp, n)
        times = self._rep_work_time(owners, t0)
        inside = (times >= self.start_s) & (times < self.end_s)
        owners, ramp_o, times = owners[inside], ramp_o[inside], times[inside]
        m = len(owners)
        if m == 0:
            return
        teams = R.team[owners]
        # account: an existing one of the rep, or a new logo created with the deal
        existing = rng.random(m) < k.existing_account_share
        accounts = np.full(m, -1, dtype=np.int64)
        for i in np.flatnonzero(existing):
            pool = self.rep_accounts[int(owners[i])]
            if pool:
                accounts[i] = pool[int(rng.integers(0, len(pool)))]
        new = accounts < 0
        if new.any():
            created = times[new] - rng.integers(HOUR, 3 * DAY, new.sum())
            accounts[new] = self.add_accounts(teams[new], owners[new], created)
        idx = D.add(m)
        D.account[idx] = accounts
        D.owner[idx] = owners
        D.team[idx] = teams
        prods = (
            (rng.random(m)[:, None] > self.team_products[teams].cumsum(axis=1))
            .sum(axis=1)
            .clip(0, 3)
        )
        D.product[idx] = prods
        src = rng.choice(len(LEAD_SOURCES), m, p=self.source_weights)
        D.source[idx] = src
        amount = (
            self.team_amount[teams] * PRODUCT_AMOUNT_FACTOR[prods] * np.exp(rng.normal(0, 0.55, m))
        )
        D.amount[idx] = np.round(amount, -2).clip(500)
        D.created[idx] = times
        planned = STAGE_DWELL_DAYS.sum() * self.team_cycle[teams] * np.exp(rng.normal(0, 0.3, m))
        D.expected[idx] = (times + planned * DAY).astype(np.int64) // DAY * DAY
        D.status[idx] = 0
        D.stage[idx] = 0
        q = (
            self.source_quality[src]
            + self.industry_fit[teams, A.industry[accounts]]
            + k.customer_boost * (A.value[accounts] > 0)
            - 0.7 * (1 - ramp_o)
            + rng.normal(0, 0.9, m)
        )
        D.quality[idx] = q
        D.dm[idx] = A.has_dm[accounts] & (rng.random(m) < _sigmoid(0.8 * q + 0.2))
        D.pace[idx] = np.exp(-0.2 * q + rng.normal(0, 0.25, m))
        D.last_event[idx] = times
        self.stage_rows.append((idx.copy(), times.copy(), np.zeros(m, dtype=np.int8)))
        self._truth(idx, times, EV_CREATED)

    # ------------------------------------------------------------------ output
    def _flush_activities(self, *, final: bool) -> None:
        if not self.act_chunks:
            return
        cols = {k: np.concatenate([c[k] for c in self.act_chunks]) for k in self.act_chunks[0]}
        self.act_chunks = []
        order = np.lexsort((cols["con"], cols["t"]))
        cols = {k: v[order] for k, v in cols.items()}
        self.writer.write_activities(cols, self)
        del final

    def finish(self) -> dict:
        """Write every table but activities (streamed during the run) and the truth files."""
        return self.writer.write_rest(self)


def default_end() -> pd.Timestamp:
    """Today 00:00 UTC as a tz-naive timestamp: the demo's "now"."""
    return pd.Timestamp.now(tz="UTC").normalize().tz_localize(None)


def generate_history(
    out_dir: str | Path,
    *,
    reps: int = 20,
    months: int = 12,
    seed: int = 0,
    end: pd.Timestamp | str | None = None,
    fmt: str = "csv",
    knobs: DemoKnobs | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Generate a demo CRM history folder (contract tables + ``truth/``) and return a summary.

    Deterministic for (seed, end, reps, months, knobs, fmt): the same inputs write
    byte-identical files. ``end`` (default: today 00:00 UTC) is the demo's "now"; nothing in
    the files happens at or after it. The summary holds rows per table and the seconds taken.
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', not {fmt!r}")
    if reps < 1 or months < 1:
        raise ValueError("reps and months must be at least 1")
    started = time.perf_counter()
    end_ts = default_end() if end is None else pd.Timestamp(end)
    if end_ts.tzinfo is not None:
        end_ts = end_ts.tz_convert("UTC").tz_localize(None)
    end_ts = end_ts.as_unit("s")
    out = Path(out_dir)
    writer = HistoryWriter(out, fmt)
    sim = Simulation(
        reps=reps,
        months=months,
        seed=seed,
        end=end_ts,
        knobs=knobs or DemoKnobs(),
        writer=writer,
        progress=progress,
    )
    sim.meta = {"seed": seed, "reps": reps, "months": months, "format": fmt}
    sim.seed_world(reps)
    sim.run()
    rows = sim.finish()
    seconds = round(time.perf_counter() - started, 2)
    log.info("generated %s in %.1f s: %s", out, seconds, rows)
    return {
        "out_dir": str(out),
        "format": fmt,
        "start": sim.start.isoformat(),
        "end": end_ts.isoformat(),
        "rows": rows,
        "seconds": seconds,
    }


__all__ = ["CHANNEL_NAMES", "STAGE_NAMES", "TRUTH_EVENTS", "default_end", "generate_history"]
