"""The notebooks run top to bottom as a user opens them: from ``notebooks/``, default settings.

The project is laid out in a temporary folder as a clone is after ``salespilot demo``: the
notebooks in ``notebooks/``, the small demo history and its trained models in ``.salespilot/``
at the root. No ``SALESPILOT_*`` folder is set, so the notebooks find the data from the project
root, not from their working directory.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.fixture(scope="module")
def project(trained_state, demo_history_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("clone")
    (root / "pyproject.toml").write_text('[project]\nname = "my-salespilot"\n')
    shutil.copytree(NOTEBOOKS, root / "notebooks")
    state = root / ".salespilot"
    state.mkdir()
    db = Path(str(trained_state.mlflow_tracking_uri).removeprefix("sqlite:///"))
    shutil.copy(db, state / "mlflow.db")
    shutil.copytree(demo_history_dir, state / "demo-data")
    return root


@pytest.mark.parametrize("name", ["01-explore-history.ipynb", "02-compare-models.ipynb"])
def test_notebook_runs_from_the_notebooks_folder(name, project, monkeypatch):
    import os

    for var in [v for v in os.environ if v.startswith("SALESPILOT_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    folder = project / "notebooks"
    monkeypatch.chdir(folder)
    nb = nbformat.read(folder / name, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    if name.startswith("01"):
        # the first cell says which history it read: the root's, found from notebooks/
        assert f"history {project / '.salespilot' / 'demo-data'}:" in text


def test_jupyter_is_in_the_dev_extra():
    import tomllib

    pyproject = tomllib.loads((NOTEBOOKS.parent / "pyproject.toml").read_text())
    dev = pyproject["project"]["optional-dependencies"]["dev"]
    assert any(d.startswith(("jupyterlab", "notebook")) for d in dev)
