from salespilot.settings import Settings


def test_defaults_live_in_state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SALESPILOT_STATE_DIR", str(tmp_path / "st"))
    s = Settings()
    assert s.mlflow_tracking_uri == f"sqlite:///{(tmp_path / 'st' / 'mlflow.db').resolve()}"
    assert s.features_dir == tmp_path / "st" / "features"
    assert not (tmp_path / "st").exists(), "settings must not create folders on construction"


def test_env_is_dev_or_prod_only(tmp_path, monkeypatch):
    import pytest
    from pydantic import ValidationError

    monkeypatch.setenv("SALESPILOT_STATE_DIR", str(tmp_path / "st"))
    monkeypatch.setenv("SALESPILOT_ENV", "banana")
    with pytest.raises(ValidationError, match="env"):
        Settings()
    monkeypatch.setenv("SALESPILOT_ENV", "prod")
    assert Settings().env == "prod"


def test_folders_and_the_settings_file_are_found_from_the_project_root(tmp_path, monkeypatch):
    """From a sub-folder (a notebook in notebooks/), relative folders and ``.env`` are the root's."""
    import os

    from salespilot.settings import project_root

    for var in [v for v in os.environ if v.startswith("SALESPILOT_")]:
        monkeypatch.delenv(var)
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / ".env").write_text("SALESPILOT_DATA_DIR=exports/crm\n")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    assert project_root() == tmp_path.resolve()
    s = Settings()
    assert s.data_dir == tmp_path.resolve() / "exports" / "crm"
    assert s.state_dir == tmp_path.resolve() / ".salespilot"
    assert s.mlflow_tracking_uri == f"sqlite:///{tmp_path.resolve() / '.salespilot' / 'mlflow.db'}"
    monkeypatch.setenv("SALESPILOT_STATE_DIR", "state")  # relative: the root's too
    assert Settings().state_dir == tmp_path.resolve() / "state"
