"""Fixtures of the features tests (helpers to write histories are in history_files.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .history_files import write_history


@pytest.fixture
def valid_dir(tmp_path) -> Path:
    """The tiny valid history of history_files.VALID, as CSV files."""
    return write_history(tmp_path / "history")
