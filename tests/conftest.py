"""Shared fixtures: temporary state folders and small generated histories.

Area-specific fixtures live in ``tests/<area>/conftest.py``.
"""

from __future__ import annotations

import pytest

from salespilot.settings import Settings


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    """Settings pointing every folder at a fresh temporary directory."""
    monkeypatch.setenv("SALESPILOT_STATE_DIR", str(tmp_path / "state"))
    return Settings()
