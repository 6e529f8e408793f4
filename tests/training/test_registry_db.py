"""The registry's SQLite tables through sqlite3 give what MLflow's client gives, and change them
as MLflow's client does; any store it does not know goes through MLflow's client."""

from __future__ import annotations

import json
import math
import shutil
import sqlite3

import pytest

from salespilot.settings import Settings
from salespilot.training import registry_db
from salespilot.training.promotion import promote, rollback
from salespilot.training.tracking import compare, missing, registry

NAME = "win_probability"


def _mlflow(db):
    import mlflow

    return mlflow.MlflowClient(f"sqlite:///{db}", f"sqlite:///{db}")


@pytest.fixture(scope="module")
def store(tmp_path_factory, mlflow_template):
    """A registry MLflow wrote: one model with a tag, versions 1-3 (3 deleted, 2 without a
    run), tags and an alias on version 1, whose run is finished with metrics (one NaN)."""
    state = mlflow_template(tmp_path_factory.mktemp("registry_db"))
    c = _mlflow(state / "mlflow.db")
    exp = c.create_experiment("e", artifact_location=(state / "artifacts").as_uri())
    run = c.create_run(exp, tags={"salespilot.owner": "elsewhere:1"})
    for key, value in (("roc_auc", 0.7), ("roc_auc", 0.8), ("baseline.lr.roc_auc", 0.6)):
        c.log_metric(run.info.run_id, key, value)
    c.log_metric(run.info.run_id, "ece", math.nan)
    c.set_terminated(run.info.run_id)
    c.create_registered_model(NAME, tags={"champion_history": '["1"]'})
    source = (state / "artifacts" / "model").as_uri()
    c.create_model_version(NAME, source, run_id=run.info.run_id, tags={"promotion": "champion"})
    c.create_model_version(NAME, source, tags={"reason": "by hand"})
    c.create_model_version(NAME, source)
    c.delete_model_version(NAME, "3")
    c.set_registered_model_alias(NAME, "champion", "1")
    c.set_model_version_tag(NAME, "1", "history_hash", "abc")
    return state / "mlflow.db"


@pytest.fixture
def db(store, tmp_path):
    """A fresh copy of the store for a test that writes."""
    return shutil.copy(store, tmp_path / "mlflow.db")


def _direct(db) -> registry_db.SqliteRegistry:
    fast = registry_db.open_sqlite(f"sqlite:///{db}")
    assert fast is not None
    return fast


def _version(mv) -> tuple:
    return (
        str(mv.version),
        mv.run_id or None,
        mv.creation_timestamp,
        dict(mv.tags),
        sorted(mv.aliases),
    )


def test_a_store_mlflow_creates_has_a_schema_revision_this_reader_knows(store):
    ((revision,),) = (
        sqlite3.connect(store).execute("SELECT version_num FROM alembic_version").fetchall()
    )
    assert revision in registry_db.KNOWN_REVISIONS


def test_reads_give_what_mlflow_gives(store):
    slow, fast = _mlflow(store), _direct(store)
    assert fast.get_registered_model(NAME).tags == slow.get_registered_model(NAME).tags
    assert [_version(v) for v in fast.search_model_versions(f"name='{NAME}'")] == [
        _version(v) for v in slow.search_model_versions(f"name='{NAME}'")
    ]
    assert [v.version for v in fast.search_model_versions(f"name='{NAME}'")] == ["2", "1"]
    for version in ("1", "2"):
        assert _version(fast.get_model_version(NAME, version)) == _version(
            slow.get_model_version(NAME, version)
        )
    assert _version(fast.get_model_version_by_alias(NAME, "champion")) == _version(
        slow.get_model_version_by_alias(NAME, "champion")
    )
    run_id = fast.get_model_version(NAME, "1").run_id
    mine, theirs = fast.get_run(run_id), slow.get_run(run_id)
    assert mine.info.status == theirs.info.status == "FINISHED"
    assert mine.data.tags == theirs.data.tags
    assert mine.data.metrics.keys() == theirs.data.metrics.keys()
    assert mine.data.metrics["roc_auc"] == theirs.data.metrics["roc_auc"] == 0.8
    assert math.isnan(mine.data.metrics["ece"]) and math.isnan(theirs.data.metrics["ece"])


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.get_registered_model("nobody"),
        lambda c: c.get_model_version(NAME, "3"),  # deleted
        lambda c: c.get_model_version(NAME, "9"),
        lambda c: c.get_model_version_by_alias(NAME, "challenger"),
        lambda c: c.get_run("0" * 32),
        lambda c: c.set_registered_model_alias(NAME, "champion", "9"),
    ],
)
def test_what_is_not_there_raises_what_missing_names_on_both_clients(store, call):
    for c in (_mlflow(store), _direct(store)):
        with pytest.raises(missing(c)):
            call(c)


def _tables(db) -> dict[str, list[tuple]]:
    con = sqlite3.connect(db)
    return {
        table: sorted(con.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
        for table in (
            "registered_models",
            "model_versions",
            "registered_model_aliases",
            "registered_model_tags",
            "model_version_tags",
        )
    } | {"runs": con.execute("SELECT run_uuid, status FROM runs").fetchall()}


def test_writes_leave_the_rows_mlflow_leaves(db, tmp_path):
    other = shutil.copy(db, tmp_path / "mlflow-other.db")
    run_id = _direct(db).get_model_version(NAME, "1").run_id
    for c in (_mlflow(other), _direct(db)):
        c.set_registered_model_alias(NAME, "challenger", "2")
        c.set_registered_model_alias(NAME, "champion", "2")
        c.set_registered_model_alias(NAME, "previous_champion", "1")
        c.delete_registered_model_alias(NAME, "challenger")
        c.delete_registered_model_alias(NAME, "never_set")
        c.set_registered_model_tag(NAME, "champion_history", '["1", "2"]')
        c.set_model_version_tag(NAME, "2", "promotion", "champion")
        c.set_model_version_tag(NAME, "1", "promotion", "rolled_back")
        c.set_terminated(run_id, "KILLED")
    assert _tables(db) == _tables(other)
    assert _tables(db)["registered_model_aliases"] == [
        ("champion", 2, NAME, "default"),
        ("previous_champion", 1, NAME, "default"),
    ]


def test_promote_rollback_and_compare_agree_through_either_client(db, tmp_path, monkeypatch):
    """The commands' own functions, once on the tables and once through MLflow's client (a
    store of a revision this module does not know)."""
    (tmp_path / "other").mkdir()
    other = shutil.copy(db, tmp_path / "other" / "mlflow.db")
    results = {}
    for path, known in ((db, registry_db.KNOWN_REVISIONS), (other, frozenset())):
        monkeypatch.setattr(registry_db, "KNOWN_REVISIONS", known)
        settings = Settings(state_dir=path.parent, mlflow_tracking_uri=f"sqlite:///{path}")
        c = registry(settings)
        assert isinstance(c, registry_db.SqliteRegistry) == bool(known)
        promote(NAME, "2", settings=settings)
        after_promote = compare(NAME, settings=settings)
        back = rollback(NAME, settings=settings)
        results[bool(known)] = (after_promote, back, compare(NAME, settings=settings))
    assert json.dumps(results[True]) == json.dumps(results[False])  # NaN != NaN
    after_promote, back, after_rollback = results[True]
    assert [v["aliases"] for v in after_promote] == [["previous_champion"], ["champion"]]
    assert back == "1"
    assert [v["aliases"] for v in after_rollback] == [["champion"], []]
    assert after_rollback[0]["metrics"]["roc_auc"] == 0.8


def test_another_store_goes_through_mlflow(db, tmp_path):
    assert registry_db.open_sqlite("http://localhost:5000") is None
    assert registry_db.open_sqlite(f"sqlite:///{tmp_path / 'none.db'}") is None
    con = sqlite3.connect(db)
    with con:
        con.execute("UPDATE alembic_version SET version_num = 'a0b1c2d3e4f5'")
    assert registry_db.open_sqlite(f"sqlite:///{db}") is None
    settings = Settings(state_dir=tmp_path, mlflow_tracking_uri=f"sqlite:///{db}")
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match="found version a0b1c2d3e4f5"):  # MLflow's word
        registry(settings)
