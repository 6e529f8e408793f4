"""Where an export ends, when it is stated rather than inferred from its last event.

A CRM export is taken at some instant; its last recorded event is often earlier (a quiet
weekend, a churn table whose latest churner left a week before the snapshot). Inferring the
end from the last event then cuts labels short; stating it (``observed_until`` in the mapping,
which ``salespilot import`` writes into the history folder as ``export.json``, or the
``observed_until`` setting) bounds the unlabelled end exactly::

    {"version": 1, "observed_until": "2025-06-30T00:00:00"}
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pandas as pd

from salespilot.atomic import write_text
from salespilot.features.pit import to_utc_naive

FILE_NAME = "export.json"


def read_observed_until(data_dir: str | Path | None) -> pd.Timestamp | None:
    """The end stated in ``<data_dir>/export.json``; None when the file or the key is absent."""
    if data_dir is None:
        return None
    path = Path(data_dir) / FILE_NAME
    if not path.is_file():
        return None
    value = json.loads(path.read_text(encoding="utf-8")).get("observed_until")
    return None if value is None else to_utc_naive(value).as_unit("ns")


def write_observed_until(data_dir: str | Path, observed_until: datetime | str | None) -> None:
    """Write the stated end next to the tables (remove the file when none is stated)."""
    path = Path(data_dir) / FILE_NAME
    if observed_until is None:
        path.unlink(missing_ok=True)
        return
    data = {"version": 1, "observed_until": to_utc_naive(observed_until).isoformat()}
    write_text(path, json.dumps(data, indent=2) + "\n")
