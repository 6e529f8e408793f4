"""Cut a history into account groups whose feature rows can be built apart, exactly.

Most features of a deal, an account or an attempt read only the events of its own account:
its deals' activities and stages, its subscriptions, its contacts' answers. A few read across
accounts, and a group of accounts alone would get them wrong:

* from the small tables, which every group keeps whole: a rep's and a team's win rates
  (``owner_*``, ``team_win_rate_smoothed``, from all closed deals), the stage norms
  (``stage_norm_days``, ``team_stage_norm_days``, ``pace_vs_team``, from every deal's stage
  changes), the category sets (``stage``, ``product_line``, ``industry``...);
* from the activities, which each group holds only its share of: everyone's call connect
  rate (the prior of ``call_connect_rate``), the history's first activity (where
  ``customer_inbound_rate_*`` start counting) and the population's answer rates of the
  attempts (``population_rate``, ``population_band_rate``, ``population_weekday_rate``).
  :func:`cross_account_figures` computes these once from the whole history, with the feature
  builders' own functions, and every slice carries them (:class:`CrossAccount`);
* the history's end (labels are known up to it): each slice states it as ``observed_until``.

:func:`account_groups` puts each account in a group by a hash of its id; an activity whose
deal or contact belongs to another account (the contract does not forbid it) joins the two
accounts in one group, so every event a row reads is in the row's group.
:func:`history_slice` is one group's history: the small tables whole, the activities and
subscriptions of its accounts only. Its rows (``build_training_set(..., account_ids=...)``)
are, value for value, the rows of those accounts in the whole history's build.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from salespilot.features.history import CrossAccount, History
from salespilot.features.pit import as_of_index, column_codes, observed_end

#: Fixed key of the account-id hash, so a group holds the same accounts in every process.
_HASH_KEY = "salespilot-group"


def cross_account_figures(
    history: History, grid: pd.DatetimeIndex, *, attempts: bool = True
) -> CrossAccount:
    """The cross-account figures of the whole ``history`` on ``grid`` (``attempts=False``:
    without the population rates of every attempt, the costly part)."""
    from salespilot.features.accounts import first_activity_ns
    from salespilot.features.contacts import AttemptRates
    from salespilot.features.deals import everyone_calls_before

    t = as_of_index(grid).asi8
    calls, connected = everyone_calls_before(history, t)
    population = None
    if attempts and history.activities is not None:
        rates = AttemptRates.from_history(history)
        population = rates.population(rates.attempts).set_index(
            rates.attempts["activity_id"].to_numpy(dtype=object)
        )
    return CrossAccount(
        calls_before=pd.DataFrame({"calls": calls, "connected": connected}, index=t),
        first_activity_ns=first_activity_ns(history),
        attempt_population=population,
    )


def account_groups(history: History, n_groups: int) -> np.ndarray:
    """The group (0 to ``n_groups - 1``) of each account, in the accounts table's order.

    An account's group is a hash of its id; accounts tied by an activity (its deal's or its
    contact's account is another one) share the group of the first of them.
    """
    ids = history.accounts["account_id"].to_numpy(dtype=object)
    n = ids.size
    hashed = (pd.util.hash_array(ids, hash_key=_HASH_KEY) % max(int(n_groups), 1)).astype(np.int64)
    root = _tied_accounts(history, n)
    if root is None:
        return hashed
    return hashed[root]


def _tied_accounts(history: History, n: int) -> np.ndarray | None:
    """For each account, the first account of the accounts its activities tie it to
    (None when every activity's deal and contact belong to its own account)."""
    acts = history.activities
    if acts is None or not len(acts) or n == 0:
        return None
    own = column_codes(history, "activities", "account_id", "account")
    pairs = []
    for table, column, entity in (
        ("opportunities", "opportunity_id", "opportunity"),
        ("contacts", "contact_id", "contact"),
    ):
        if history.table(table) is None:
            continue
        owner = column_codes(history, table, "account_id", "account")
        code = column_codes(history, "activities", column, entity)
        other = np.where(code >= 0, owner[np.where(code >= 0, code, 0)], -1) if owner.size else -1
        tie = (own >= 0) & (other >= 0) & (own != other)
        pairs.append((own[tie], np.asarray(other)[tie]))
    if not any(a.size for a, _ in pairs):
        return None
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    a = np.concatenate([p[0] for p in pairs])
    b = np.concatenate([p[1] for p in pairs])
    graph = coo_matrix((np.ones(a.size, dtype=np.int8), (a, b)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    # each component's first account (lowest row) names its group
    first = np.full(label.max() + 1, n, dtype=np.int64)
    np.minimum.at(first, label, np.arange(n))
    return first[label]


def history_slice(
    history: History, accounts: np.ndarray, cross: CrossAccount | None = None
) -> tuple[History, np.ndarray]:
    """The history of the accounts where ``accounts`` (a mask over the accounts table) is
    true, and the row numbers its activities had in ``history``'s.

    Reps, accounts, contacts, opportunities and stage changes stay whole (rep records and
    stage norms cross accounts; row numbers stay those of the whole history); activities and
    subscriptions are cut to those accounts. ``cross`` (:func:`cross_account_figures` of the
    whole history) travels with the slice, its attempt rates cut to the slice's attempts.
    """
    keep = np.asarray(accounts, dtype=bool)
    changes: dict[str, object] = {"observed_until": observed_end(history)}
    rows = np.empty(0, dtype=np.int64)
    if history.activities is not None:
        code = column_codes(history, "activities", "account_id", "account")
        rows = np.flatnonzero(np.where(code >= 0, keep[np.where(code >= 0, code, 0)], False))
        changes["activities"] = history.activities.iloc[rows].reset_index(drop=True)
    if history.subscriptions is not None:
        code = column_codes(history, "subscriptions", "account_id", "account")
        in_group = np.where(code >= 0, keep[np.where(code >= 0, code, 0)], False)
        changes["subscriptions"] = history.subscriptions[in_group].reset_index(drop=True)
    if cross is not None and cross.attempt_population is not None:
        mine = changes.get("activities")
        wanted = pd.Index(mine["activity_id"].to_numpy(dtype=object)) if mine is not None else []
        population = cross.attempt_population
        cross = replace(cross, attempt_population=population[population.index.isin(wanted)])
    changes["cross_account"] = cross
    return replace(history, **changes), rows
