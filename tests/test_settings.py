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
