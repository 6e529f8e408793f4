from salespilot.settings import Settings


def test_defaults_live_in_state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SALESPILOT_STATE_DIR", str(tmp_path / "st"))
    s = Settings()
    assert s.mlflow_tracking_uri == f"sqlite:///{(tmp_path / 'st' / 'mlflow.db').resolve()}"
    assert s.features_dir == tmp_path / "st" / "features"
    assert not (tmp_path / "st").exists(), "settings must not create folders on construction"
