"""The notebooks run top to bottom on the small demo history and its trained models."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.mark.parametrize("name", ["01-explore-history.ipynb", "02-compare-models.ipynb"])
def test_notebook_runs(name, trained_state, demo_history_dir, monkeypatch):
    monkeypatch.setenv("SALESPILOT_DATA_DIR", str(demo_history_dir))
    monkeypatch.setenv("SALESPILOT_STATE_DIR", str(trained_state.state_dir))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
