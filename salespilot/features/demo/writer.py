"""Writes the simulated world as contract tables (CSV or Parquet) plus ``truth/``.

Activities are streamed in chunks (bounded memory for large histories); everything else is
written once at the end. Ids are fixed-width strings built with numpy (fast for millions of
rows); CSV timestamps are ISO 8601 without offset (UTC, as the contract says).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from salespilot.features.demo.world import (
    ACCOUNT_SUFFIXES,
    ACCOUNT_WORDS,
    FIRST_NAMES,
    INDUSTRIES,
    LAST_NAMES,
    LEAD_SOURCES,
    PRODUCT_LINES,
    STAGE_NAMES,
    TEAMS,
    TIMEZONES,
)
from salespilot.features.schema import CHANNELS, CONTACT_ROLES, DIRECTIONS, OUTCOMES

if TYPE_CHECKING:
    from salespilot.features.demo.generator import Simulation

DAY = 86_400
TRUTH_DIR = "truth"


def fixed_ids(prefix: str, idx: np.ndarray, width: int) -> np.ndarray:
    """``prefix`` + zero-padded ``idx + 1`` as a fixed-width bytes array, vectorised."""
    n = np.asarray(idx, dtype=np.int64) + 1
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    pre = np.frombuffer(prefix.encode(), dtype=np.uint8)
    mat = np.empty((len(n), len(pre) + width), dtype=np.uint8)
    mat[:, : len(pre)] = pre
    mat[:, len(pre) :] = (n[:, None] // powers) % 10 + ord("0")
    return mat.view(f"S{len(pre) + width}").ravel()


def _id_array(prefix: str, idx: np.ndarray, width: int) -> pa.Array:
    idx = np.asarray(idx, dtype=np.int64)
    mask = idx < 0
    ids = fixed_ids(prefix, np.where(mask, 0, idx), width)
    arr = pa.array(ids, type=pa.binary(), mask=mask if mask.any() else None)
    return arr.cast(pa.string())


def _names(table: np.ndarray, codes: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    vals = np.asarray(table, dtype=object)[np.where(codes < 0, 0, codes)]
    m = (codes < 0) if mask is None else mask
    return pa.array(vals, type=pa.string(), mask=m if m.any() else None)


class HistoryWriter:
    """Writes one history folder in ``fmt`` ("csv" or "parquet")."""

    def __init__(self, out: Path, fmt: str) -> None:
        self.out = out
        self.fmt = fmt
        out.mkdir(parents=True, exist_ok=True)
        (out / TRUTH_DIR).mkdir(exist_ok=True)
        self._streams: dict[str, object] = {}
        self.rows: dict[str, int] = {}
        self._next_activity = 0

    # -------------------------------------------------------------- low level
    def _ts(self, secs: np.ndarray) -> pa.Array:
        secs = np.asarray(secs, dtype=np.int64)
        mask = secs < 0
        dt = np.where(mask, 0, secs).astype("datetime64[s]")
        if self.fmt == "csv":
            return pa.array(
                np.datetime_as_string(dt, unit="s"),
                type=pa.string(),
                mask=mask if mask.any() else None,
            )
        return pa.array(
            dt.astype("datetime64[us]"), type=pa.timestamp("us"), mask=mask if mask.any() else None
        )

    def _path(self, name: str, truth: bool = False) -> Path:
        ext = "csv" if self.fmt == "csv" else "parquet"
        return (self.out / TRUTH_DIR if truth else self.out) / f"{name}.{ext}"

    def _write(self, name: str, table: pa.Table, truth: bool = False) -> None:
        """Write a whole table at once."""
        path = self._path(name, truth)
        if self.fmt == "csv":
            pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(quoting_style="none"))
        else:
            pq.write_table(table, path, compression="zstd")
        self.rows[f"truth/{name}" if truth else name] = table.num_rows

    def _append(self, name: str, table: pa.Table, truth: bool = False) -> None:
        """Append a chunk to a streamed table."""
        key = f"truth/{name}" if truth else name
        w = self._streams.get(key)
        if w is None:
            path = self._path(name, truth)
            if self.fmt == "csv":
                w = pacsv.CSVWriter(
                    path, table.schema, write_options=pacsv.WriteOptions(quoting_style="none")
                )
            else:
                w = pq.ParquetWriter(path, table.schema, compression="zstd")
            self._streams[key] = w
        w.write_table(table)
        self.rows[key] = self.rows.get(key, 0) + table.num_rows

    def close(self) -> None:
        for w in self._streams.values():
            w.close()
        self._streams = {}

    # -------------------------------------------------------------- activities
    def write_activities(self, c: dict[str, np.ndarray], sim: Simulation) -> None:
        n = len(c["t"])
        ids = np.arange(self._next_activity, self._next_activity + n)
        self._next_activity += n
        dur = c["dur"]
        act = pa.table(
            {
                "activity_id": _id_array("X", ids, 9),
                "occurred_at": self._ts(c["t"]),
                "rep_id": _id_array("R", c["rep"], 5),
                "account_id": _id_array("A", c["acc"], 7),
                "contact_id": _id_array("C", c["con"], 8),
                "opportunity_id": _id_array("O", c["opp"], 7),
                "channel": _names(np.array(CHANNELS), _channel_codes(c["ch"])),
                "direction": _names(np.array(DIRECTIONS), c["dir"].astype(np.int64)),
                "outcome": _names(np.array(OUTCOMES), c["out"].astype(np.int64)),
                "duration_s": pa.array(np.round(dur, 0), mask=np.isnan(dur)),
            }
        )
        self._append("activities", act)
        has_p = ~np.isnan(c["p"])
        if has_p.any():
            truth = pa.table(
                {
                    "activity_id": _id_array("X", ids[has_p], 9),
                    "p_success": pa.array(np.round(c["p"][has_p], 6)),
                }
            )
            self._append("attempts", truth, truth=True)

    # -------------------------------------------------------------- the rest
    def write_rest(self, sim: Simulation) -> dict[str, int]:
        self.close()
        if "activities" not in self.rows:  # an empty history still gets the file
            empty = {
                k: np.zeros(0, dtype=np.int64)
                for k in ("t", "rep", "acc", "con", "opp", "ch", "dir", "out")
            }
            empty["dur"] = np.zeros(0)
            empty["p"] = np.zeros(0)
            self.write_activities(empty, sim)
            self.close()
        if "truth/attempts" not in self.rows:
            self._write(
                "attempts",
                pa.table(
                    {
                        "activity_id": pa.array([], pa.string()),
                        "p_success": pa.array([], pa.float64()),
                    }
                ),
                truth=True,
            )
        self._reps(sim)
        self._accounts(sim)
        self._contacts(sim)
        self._opportunities(sim)
        self._stage_changes(sim)
        self._subscriptions(sim)
        self._targets(sim)
        self._truth(sim)
        return dict(sorted(self.rows.items()))

    def _reps(self, sim: Simulation) -> None:
        R = sim.reps
        n = R.n
        idx = np.arange(n)
        names = [
            f"{FIRST_NAMES[i % len(FIRST_NAMES)]} {LAST_NAMES[(i * 7 + i // len(FIRST_NAMES)) % len(LAST_NAMES)]}"
            for i in range(n)
        ]
        teams = R.team[:n]
        self._write(
            "reps",
            pa.table(
                {
                    "rep_id": _id_array("R", idx, 5),
                    "name": pa.array(names, pa.string()),
                    "team": _names(np.array([t.name for t in TEAMS]), teams.astype(np.int64)),
                    "region": _names(np.array([t.region for t in TEAMS]), teams.astype(np.int64)),
                    "manager_id": _id_array("M", R.manager[:n], 3),
                    "hired_at": self._ts(R.hired[:n]),
                    "left_at": self._ts(R.left[:n]),
                }
            ),
        )

    def _accounts(self, sim: Simulation) -> None:
        A = sim.acc
        n = A.n
        idx = np.arange(n)
        w, s = len(ACCOUNT_WORDS), len(ACCOUNT_SUFFIXES)
        names = [
            f"{ACCOUNT_WORDS[i % w]} {ACCOUNT_WORDS[(i // w) % w]} {ACCOUNT_SUFFIXES[(i // (w * w)) % s]}"
            for i in range(n)
        ]
        self._write(
            "accounts",
            pa.table(
                {
                    "account_id": _id_array("A", idx, 7),
                    "name": pa.array(names, pa.string()),
                    "industry": _names(np.array(INDUSTRIES), A.industry[:n].astype(np.int64)),
                    "region": _names(
                        np.array([t.region for t in TEAMS]), A.team[:n].astype(np.int64)
                    ),
                    "employees": pa.array(A.employees[:n]),
                    "created_at": self._ts(A.created[:n]),
                    "owner_rep_id": _id_array("R", A.owner[:n], 5),
                }
            ),
        )

    def _contacts(self, sim: Simulation) -> None:
        C = sim.con
        n = C.n
        self._write(
            "contacts",
            pa.table(
                {
                    "contact_id": _id_array("C", np.arange(n), 8),
                    "account_id": _id_array("A", C.account[:n], 7),
                    "role": _names(np.array(CONTACT_ROLES), C.role[:n].astype(np.int64)),
                    "timezone": _names(np.array(TIMEZONES), C.tz[:n].astype(np.int64)),
                }
            ),
        )

    def _opportunities(self, sim: Simulation) -> None:
        D = sim.deal
        n = D.n
        # a planned date, set at creation: may lie after the demo's "now" (the contract allows it)
        expected = D.expected[:n]
        self._write(
            "opportunities",
            pa.table(
                {
                    "opportunity_id": _id_array("O", np.arange(n), 7),
                    "account_id": _id_array("A", D.account[:n], 7),
                    "owner_rep_id": _id_array("R", D.owner[:n], 5),
                    "product_line": _names(np.array(PRODUCT_LINES), D.product[:n].astype(np.int64)),
                    "lead_source": _names(np.array(LEAD_SOURCES), D.source[:n].astype(np.int64)),
                    "amount": pa.array(np.round(D.amount[:n], 2)),
                    "created_at": self._ts(D.created[:n]),
                    "expected_close_at": self._ts(expected),
                    "closed_at": self._ts(D.closed[:n]),
                    "status": _names(
                        np.array(["open", "won", "lost"]), D.status[:n].astype(np.int64)
                    ),
                }
            ),
        )

    def _stage_changes(self, sim: Simulation) -> None:
        if sim.stage_rows:
            d = np.concatenate([r[0] for r in sim.stage_rows])
            t = np.concatenate([r[1] for r in sim.stage_rows])
            s = np.concatenate([r[2] for r in sim.stage_rows]).astype(np.int64)
        else:
            d = t = s = np.zeros(0, dtype=np.int64)
        order = np.lexsort((t, d))
        self._write(
            "stage_changes",
            pa.table(
                {
                    "opportunity_id": _id_array("O", d[order], 7),
                    "changed_at": self._ts(t[order]),
                    "stage": _names(np.array(STAGE_NAMES), s[order]),
                }
            ),
        )

    def _subscriptions(self, sim: Simulation) -> None:
        s = sim.subs
        n = len(s["account"])
        value = np.array(s["value"], dtype=np.float64)
        keep = np.flatnonzero(value > 0)
        self._write(
            "subscriptions",
            pa.table(
                {
                    "subscription_id": _id_array("S", np.arange(len(keep)), 7),
                    "account_id": _id_array("A", np.array(s["account"], dtype=np.int64)[keep], 7),
                    "product_line": _names(
                        np.array(PRODUCT_LINES), np.array(s["product"], dtype=np.int64)[keep]
                    ),
                    "started_at": self._ts(np.array(s["start"], dtype=np.int64)[keep]),
                    "ended_at": self._ts(np.array(s["end"], dtype=np.int64)[keep]),
                    "monthly_value": pa.array(np.round(value[keep], 2)),
                }
            ),
        )
        del n

    def _targets(self, sim: Simulation) -> None:
        """Quarterly targets as a real CRM has them: last year's pace + 20 %.

        Every quarter that started in the history, the current one included (its end is a
        planned date after ``end``).

        Set at the start of each quarter from bookings before it only (the rep's own average
        quarter if they have a full one, else their team's per-rep average, else a nominal).
        """
        import pandas as pd

        R, D = sim.reps, sim.deal
        won = D.status[: D.n] == 1
        w_owner, w_t, w_amt = D.owner[: D.n][won], D.closed[: D.n][won], D.amount[: D.n][won]
        q_start = (pd.Timestamp(sim.start) + pd.offsets.QuarterBegin(startingMonth=1)).normalize()
        rows = []
        nominal = sim.k.deals_per_rep_month * 3 * 0.3 * sim.team_amount
        while True:
            q_end = q_start + pd.DateOffset(months=3)
            if q_start >= sim.end:
                break
            qs, qe = int(q_start.value // 10**9), int(q_end.value // 10**9)
            lookback = max(sim.start_s, qs - 365 * DAY)
            quarters = (qs - lookback) / (91.25 * DAY)
            sel = (w_t >= lookback) & (w_t < qs)
            own = np.bincount(w_owner[sel], weights=w_amt[sel], minlength=R.n)[: R.n] / max(
                quarters, 1e-9
            )
            teams = R.team[: R.n]
            team_sum = np.bincount(teams[w_owner[sel]], weights=w_amt[sel], minlength=len(nominal))
            team_avg = (
                team_sum
                / max(quarters, 1e-9)
                / np.maximum(np.bincount(teams, minlength=len(nominal)), 1)
            )
            on = (R.hired[: R.n] < qe) & ~((R.left[: R.n] >= 0) & (R.left[: R.n] <= qs))
            if quarters >= 0.99:
                base = np.where((R.hired[: R.n] <= lookback) & (own > 0), own, team_avg[teams])
            else:
                base = nominal[teams]
            for r in np.flatnonzero(on):
                rows.append((r, qs, qe, round(float(base[r]) * 1.2, -2)))
            q_start = q_end
        arr = np.array(rows, dtype=np.float64).reshape(-1, 4)
        self._write(
            "targets",
            pa.table(
                {
                    "rep_id": _id_array("R", arr[:, 0].astype(np.int64), 5),
                    "period_start": self._ts(arr[:, 1].astype(np.int64)),
                    "period_end": self._ts(arr[:, 2].astype(np.int64)),
                    "amount": pa.array(arr[:, 3]),
                }
            ),
        )

    def _truth(self, sim: Simulation) -> None:
        from salespilot.features.demo.generator import TRUTH_EVENTS

        D = sim.deal
        rows = sim.truth_rows or [
            (np.zeros(0, np.int64),) * 2
            + (np.zeros(0),)
            + (np.zeros(0, np.int64),) * 3
            + (np.zeros(0),) * 3
        ]
        d, t, p, e, stage, stalled, logit, stall, speed = (
            np.concatenate([r[i] for r in rows]) for i in range(9)
        )
        order = np.lexsort((np.arange(len(d)), t, d))
        self._write(
            "opportunities",
            pa.table(
                {
                    "opportunity_id": _id_array("O", d[order], 7),
                    "valid_from": self._ts(t[order]),
                    "p_win": pa.array(np.round(p[order], 6)),
                    "event": _names(np.array(TRUTH_EVENTS), e[order].astype(np.int64)),
                    # the chain's state and parameters, for win-within-a-horizon (truth.oracle_win)
                    "stage": _names(np.array(STAGE_NAMES), stage[order].astype(np.int64)),
                    "stalled": pa.array(stalled[order].astype(bool)),
                    "logit": pa.array(np.round(logit[order], 6), mask=np.isnan(logit[order])),
                    "stall_hazard": pa.array(
                        np.round(stall[order], 6), mask=np.isnan(stall[order])
                    ),
                    "speed": pa.array(np.round(speed[order], 6), mask=np.isnan(speed[order])),
                }
            ),
            truth=True,
        )
        meta = {
            **sim.meta,
            "start": sim.start.isoformat(),
            "end": sim.end.isoformat(),
            "knobs": asdict(sim.k),
        }
        (self.out / TRUTH_DIR / "meta.json").write_text(
            json.dumps(meta, indent=1, sort_keys=True) + "\n"
        )
        n = D.n
        self._write(
            "opportunity_latent",
            pa.table(
                {
                    "opportunity_id": _id_array("O", np.arange(n), 7),
                    "quality": pa.array(np.round(D.quality[:n], 6)),
                    "dm_engaged": pa.array(D.dm[:n]),
                    "handed_over_badly": pa.array(D.bad[:n]),
                    "pace": pa.array(np.round(D.pace[:n], 6)),
                }
            ),
            truth=True,
        )
        rows = sim.churn_rows
        if rows:
            a = np.concatenate([r[0] for r in rows])
            ps = np.concatenate([np.full(len(r[0]), r[1], dtype=np.int64) for r in rows])
            pe = np.concatenate([np.full(len(r[0]), r[2], dtype=np.int64) for r in rows])
            pc, ch, health, mu, static, bad_until, new_until = (
                np.concatenate([r[i] for r in rows]) for i in range(3, 10)
            )
        else:
            a = ps = pe = bad_until = new_until = np.zeros(0, dtype=np.int64)
            pc = health = mu = static = np.zeros(0)
            ch = np.zeros(0, dtype=bool)
        order = np.lexsort((ps, a))
        self._write(
            "churn",
            pa.table(
                {
                    "account_id": _id_array("A", a[order], 7),
                    "period_start": self._ts(ps[order]),
                    "period_end": self._ts(pe[order]),
                    "p_churn": pa.array(np.round(pc[order], 6)),
                    "churned": pa.array(ch[order]),
                    # the state behind p_churn, for the expected risk over a horizon (truth.oracle_churn)
                    "health": pa.array(np.round(health[order], 6)),
                    "health_mean": pa.array(np.round(mu[order], 6)),
                    "logit_static": pa.array(np.round(static[order], 6)),
                    "bad_handover_until": self._ts(bad_until[order]),
                    "new_customer_until": self._ts(new_until[order]),
                }
            ),
            truth=True,
        )
        self._profiles(sim)

    def _profiles(self, sim: Simulation, chunk: int = 10_000) -> None:
        """Every contact's 7 x 24 local-time profile, streamed in chunks of contacts."""
        n = sim.con.n
        for lo in range(0, max(n, 1), chunk):
            cs = np.arange(lo, min(lo + chunk, n))
            c = np.repeat(cs, 7 * 24)
            wd = np.tile(np.repeat(np.arange(7), 24), len(cs))
            hr = np.tile(np.arange(24), 7 * len(cs))
            call = sim.contact_p(c, wd, hr, np.zeros(len(c), dtype=bool))
            mail = sim.contact_p(c, wd, hr, np.ones(len(c), dtype=bool))
            table = pa.table(
                {
                    "contact_id": pa.array(
                        np.repeat(fixed_ids("C", cs, 8), 7 * 24), type=pa.binary()
                    ).cast(pa.string()),
                    "weekday": pa.array(wd.astype(np.int8)),
                    "hour": pa.array(hr.astype(np.int8)),
                    "p_connect_call": pa.array(np.round(call, 5)),
                    "p_reply_email": pa.array(np.round(mail, 5)),
                }
            )
            self._append("contact_profiles", table, truth=True)
        self.close()


def _channel_codes(ch: np.ndarray) -> np.ndarray:
    """Generator channel codes -> index into schema.CHANNELS."""
    from salespilot.features.demo.generator import CHANNEL_NAMES

    lookup = np.array([CHANNELS.index(name) for name in CHANNEL_NAMES])
    return lookup[ch.astype(np.int64)]
