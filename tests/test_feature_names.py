"""Feature names have one source: the specs' readable names, built by the table's feature
builder and documented in docs/features.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from salespilot.features import accounts, contacts, deals
from salespilot.models import SPECS

DOC = Path(__file__).resolve().parents[1] / "docs" / "features.md"

BUILT = {
    "deals": (*deals.DEAL_CONTEXT_COLUMNS, *deals.DEAL_FEATURES),
    "accounts": (*accounts.ACCOUNT_CONTEXT_COLUMNS, *accounts.ACCOUNT_FEATURES),
    "attempts": (*contacts.ATTEMPT_CONTEXT_COLUMNS, *contacts.ATTEMPT_FEATURES),
}


@pytest.mark.parametrize("name", list(SPECS))
def test_every_feature_of_a_spec_is_built_named_and_documented(name):
    spec = SPECS[name]
    assert set(spec.readable_names) == set(spec.features), "one readable name per feature"
    assert [f for f in spec.features if f not in BUILT[spec.table]] == []
    text = DOC.read_text(encoding="utf-8")
    undocumented = [f for f in spec.features if not re.search(rf"`{re.escape(f)}`", text)]
    assert undocumented == [], f"docs/features.md does not list {undocumented}"
