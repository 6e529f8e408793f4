"""Insights backtest: does acting on the brief's top opportunity beat acting on a random one?

    uv run python bench/insights.py [--seeds 1 2] [--reps 12] [--random 6] [--workdir DIR]

Per seed: generates a demo history to 2026-07-01 (15 months), reads the brief of the biggest
team as of Monday 2026-01-05 (``improvement_opportunities``: every candidate, largest expected
value first), then replays the same simulation (same seed, same draws up to that Monday) with
one opportunity acted on from that Monday, and counts the team's bookings (won amount) of the
next quarter, 2026-Q2, against the replay without any action. Acted on means, in the
generator's own terms, raising what the opportunity names to the team's norm:

* ``gap:new_leads`` / ``health``: the rep's new leads x norm / rep (plan / recent), extra deals
  drawn as the rep's own;
* ``gap:lead_to_meeting|meeting_to_demo|demo_to_won``: the rep's skill (log-odds of moving a
  stage) + log(norm / rep);
* ``gap:deal_size``: the rep's new deals' amounts x norm / rep;
* ``gap:slipping``: the rep's deals move norm / rep faster;
* ``channels``: the opportunity's share of the team's new leads moved from one source to the
  other (the deal's latent quality follows its source);
* ``handover``: the hand-over repaired (no penalty, no silence from that Monday on).

The actions draw from a random stream of their own, so the replay's own draws stay the same
until the acted-on state makes them differ; each opportunity is replayed ``--replays`` times
(replay r draws the same future for every opportunity). Two measures per replay: the team's
bookings (won amount) of 2026-Q2, and - far less noisy, as no coin is tossed for each deal's
outcome - the expected value (amount x the generator's exact win probability) of the team's
deals open on the brief's Monday (after the action) or created from then to the end of Q2.
Prints, per seed, the uplift against no action (mean ± standard error over the replays) of
the top opportunity and of ``--random`` others of the same list drawn at random (seeded), and
overall the mean uplift of the top one against the mean of a random one.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

END = pd.Timestamp("2026-07-01")
MONTHS = 15
ACT_AT = pd.Timestamp("2026-01-05")  # a Monday: the brief of the week before
NEXT_QUARTER = (pd.Timestamp("2026-04-01"), pd.Timestamp("2026-07-01"))
CAP = 3.0  # no action multiplies anything by more than this


def _index(text_id: str) -> int:
    """Generator index of an id the writer wrote (``R00001``, ``O0000001``: 1-based)."""
    return int(text_id[1:]) - 1


def _simulation_class():
    from salespilot.features.demo.generator import Simulation
    from salespilot.features.demo.world import LEAD_SOURCES

    class ActedSimulation(Simulation):
        """The demo simulation with one opportunity acted on from ``act_at`` (None: as is)."""

        def setup_action(self, opportunity: dict | None, act_at: pd.Timestamp, team: int):
            self.action = opportunity
            self.act_s = self.setup_s = int(act_at.value // 10**9)
            self.team_ix = team
            self.act_rng = np.random.default_rng(20260105)
            self.acted = False
            self.expected = 0.0
            self.only_rep: int | None = None
            self.lead_multiplier = 1.0

        # -- the hooks ----------------------------------------------------------------------
        def _active_reps(self, t0: int) -> np.ndarray:
            reps = super()._active_reps(t0)
            return reps if self.only_rep is None else reps[reps == self.only_rep]

        def _deal_transitions(self, t0: int) -> None:
            if not self.acted and t0 >= self.act_s:
                if self.action is not None:
                    self._act_once(t0)
                D = self.deal
                n = D.n
                open_ = np.flatnonzero((D.status[:n] == 0) & (D.team[:n] == self.team_ix))
                self._expect(open_)
                self.acted = True
            super()._deal_transitions(t0)

        def _expect(self, deals: np.ndarray) -> None:
            """Add the deals' amount x exact win probability now (the oracle's view)."""
            if len(deals):
                self.expected += float((self.deal.amount[deals] * self.p_win(deals)).sum())

        def _new_deals(self, t0: int) -> None:
            before = self.deal.n
            super()._new_deals(t0)
            if t0 < self.act_s:
                return
            if self.action is None:
                self._expect_new(before)
                return
            self._shape_new(np.arange(before, self.deal.n))
            if self.lead_multiplier > 1.0 and self.rep_ix is not None:
                # the extra leads: the rep's own new-deal draw, scaled, from the action's stream
                main, knobs = self.rng, self.k
                extra = knobs.deals_per_rep_month * (self.lead_multiplier - 1.0)
                self.rng, self.k = (
                    self.act_rng,
                    dataclasses.replace(knobs, deals_per_rep_month=extra),
                )
                self.only_rep = self.rep_ix
                start = self.deal.n
                try:
                    super()._new_deals(t0)
                finally:
                    self.rng, self.k, self.only_rep = main, knobs, None
                self._shape_new(np.arange(start, self.deal.n))
            self._expect_new(before)

        def _expect_new(self, before: int) -> None:
            new = np.arange(before, self.deal.n)
            self._expect(new[self.deal.team[new] == self.team_ix])

        # -- what each opportunity changes ------------------------------------------------------
        @property
        def rep_ix(self) -> int | None:
            rep = (self.action or {}).get("subject", {}).get("rep_id")
            return None if rep is None else _index(rep)

        def _ratio(self) -> float:
            s = self.action["subject"]
            if self.action["source"] == "health":
                got, want = s["recent_leads_per_week"], s["plan_leads_per_week"]
            else:
                got, want = s["rep_value"], s["norm"]
            return float(np.clip(want / got, 1.0, CAP)) if got > 0 else CAP

        def _act_once(self, t0: int) -> None:
            a, D, A = self.action, self.deal, self.acc
            source = a["source"]
            if source in ("gap:new_leads", "health"):
                self.lead_multiplier = self._ratio()
            elif source in ("gap:lead_to_meeting", "gap:meeting_to_demo", "gap:demo_to_won"):
                self.reps.skill[self.rep_ix] += np.log(self._ratio())
            elif source == "gap:slipping":
                mine = np.flatnonzero((D.owner[: D.n] == self.rep_ix) & (D.status[: D.n] == 0))
                D.pace[mine] /= self._ratio()
            elif source == "handover":
                i = _index(a["subject"]["id"])
                if a["subject"]["kind"] == "deal":
                    D.bad[i] = False
                    D.silent_until[i] = min(int(D.silent_until[i]), t0)
                else:
                    if A.bad_until[i] > t0:
                        A.health[i] += 0.8 * self.k.handover_penalty
                    A.bad_until[i] = min(int(A.bad_until[i]), t0)
                    A.silent_until[i] = min(int(A.silent_until[i]), t0)

        def _shape_new(self, new: np.ndarray) -> None:
            a, D = self.action, self.deal
            if len(new) == 0:
                return
            if a["source"] == "gap:deal_size":
                mine = new[D.owner[new] == self.rep_ix]
                D.amount[mine] = np.round(D.amount[mine] * self._ratio(), -2)
            elif a["source"] == "gap:slipping":
                mine = new[D.owner[new] == self.rep_ix]
                D.pace[mine] /= self._ratio()
            elif a["source"] == "channels":
                s = a["subject"]
                frm, to = LEAD_SOURCES.index(s["from"]), LEAD_SOURCES.index(s["to"])
                pool = new[(D.team[new] == self.team_ix) & (D.source[new] == frm)]
                p = min(s["share"] / max(self.source_weights[frm], 1e-9), 1.0)
                moved = pool[self.act_rng.random(len(pool)) < p]
                dq = self.source_quality[to] - self.source_quality[frm]
                D.source[moved] = to
                D.quality[moved] += dq
                D.pace[moved] *= np.exp(-0.2 * dq)

    return ActedSimulation


class _NoFiles:
    """A writer that keeps nothing: the replays only count bookings."""

    def write_activities(self, cols, sim) -> None:
        pass


def replay_start(*, seed: int, reps: int, team: int):
    """The simulation of ``seed`` run up to the brief's Monday (the state every replay copies)."""
    from salespilot.features.demo.knobs import DemoKnobs

    sim = _simulation_class()(
        reps=reps, months=MONTHS, seed=seed, end=END, knobs=DemoKnobs(), writer=_NoFiles()
    )
    sim.setup_action(None, ACT_AT, team)
    sim.seed_world(reps)
    act_day = -(-(sim.setup_s - sim.start_s) // 86_400)
    sim.run(range(act_day))
    return sim, act_day


def team_bookings(
    start, act_day: int, opportunity: dict | None, *, seed: int, rep: int
) -> tuple[float, float]:
    """The team's won amount in the next quarter, and the expected value (amount x exact win
    probability) of the team's deals open on the brief's Monday or created from then to the
    quarter's end, replaying from ``start`` with ``opportunity`` acted on; replay ``rep`` draws
    the same future for every opportunity."""
    sim = copy.deepcopy(start)
    sim.action = opportunity
    sim.rng = np.random.default_rng([seed, rep])
    sim.act_rng = np.random.default_rng([seed, rep, 1])
    sim.run(range(act_day, sim.days))
    D, n, team = sim.deal, sim.deal.n, sim.team_ix
    lo, hi = (int(t.value // 10**9) for t in NEXT_QUARTER)
    won = (D.status[:n] == 1) & (D.closed[:n] >= lo) & (D.closed[:n] < hi) & (D.team[:n] == team)
    return float(D.amount[:n][won].sum()), sim.expected


def main() -> None:
    from salespilot.features.demo import generate_history
    from salespilot.features.demo.world import TEAMS
    from salespilot.features.loader import load_history
    from salespilot.targets.brief import improvement_opportunities

    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=12)
    ap.add_argument("--random", type=int, default=6)
    ap.add_argument("--replays", type=int, default=8)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="sp-bench-insights-"))
    print(f"workdir {work}; brief as of {ACT_AT:%Y-%m-%d}, bookings of 2026-Q2", flush=True)
    names = [t.name for t in TEAMS]
    metrics = ("booked", "expected")
    top = {m: [] for m in metrics}
    rand = {m: [] for m in metrics}
    beats = {m: [] for m in metrics}
    for seed in args.seeds:
        t = time.perf_counter()
        data = work / f"seed{seed}"
        generate_history(data, reps=args.reps, months=MONTHS, seed=seed, end=END)
        history = load_history(data, now=END)
        team = history.reps["team"].value_counts().sort_index().idxmax()
        candidates, notes = improvement_opportunities(history, str(team), as_of=ACT_AT)
        if len(candidates) < 2:
            print(f"seed {seed}: {len(candidates)} opportunities for {team}; skipped ({notes})")
            continue
        start, act_day = replay_start(seed=seed, reps=args.reps, team=names.index(str(team)))
        rng = np.random.default_rng(seed)
        others = rng.choice(np.arange(1, len(candidates)), min(args.random, len(candidates) - 1),
                            replace=False)  # fmt: skip
        picked = [0, *sorted(int(i) for i in others)]
        runs = {  # (replays, 2): booked, expected
            i: np.array(
                [
                    team_bookings(
                        start, act_day, None if i is None else candidates[i], seed=seed, rep=r
                    )
                    for r in range(args.replays)
                ]
            )
            for i in [None, *picked]
        }
        base = runs[None].mean(axis=0)
        print(f"seed {seed}: team {team}, {len(candidates)} opportunities; without action: "
              f"2026-Q2 booked {base[0]:,.0f}, expected value {base[1]:,.0f} "
              f"({args.replays} replays, {time.perf_counter() - t:.0f} s)")  # fmt: skip
        print(f"  {'':6}{'source':<20}{'brief':>11}{'uplift booked':>24}{'uplift expected':>24}")
        mean = {}
        for i in picked:
            c, u = candidates[i], runs[i] - runs[None]
            se = u.std(axis=0, ddof=1) / np.sqrt(len(u)) if len(u) > 1 else np.full(2, np.nan)
            mean[i] = u.mean(axis=0)
            mark = "top   " if i == 0 else f"#{i + 1:<5}"
            print(f"  {mark}{c['source']:<20}{c['expected_value']:>11,.0f}"
                  f"{mean[i][0]:>+14,.0f} ± {se[0]:>7,.0f}{mean[i][1]:>+14,.0f} ± {se[1]:>7,.0f}"
                  f"  {c['title'][:44]}")  # fmt: skip
        for k, m in enumerate(metrics):
            others_m = [mean[i][k] for i in picked[1:]]
            top[m].append(mean[0][k])
            rand[m].append(float(np.mean(others_m)))
            beats[m].append(float(np.mean([mean[0][k] > x for x in others_m])))
    if top["booked"]:
        n = len(top["booked"])
        for m, what in (("booked", "2026-Q2 bookings"), ("expected", "expected value")):
            print(f"overall ({n} seeds), {what}: top opportunity {np.mean(top[m]):+,.0f}, a random"
                  f" one of the same list {np.mean(rand[m]):+,.0f}; the top one beats"
                  f" {np.mean(beats[m]):.0%} of the random ones")  # fmt: skip


if __name__ == "__main__":
    main()
