"""Files written whole: the one helper every persistent write goes through."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from salespilot.atomic import (
    leftovers,
    remove_leftovers,
    replacing,
    replacing_dir,
    write_json,
    write_text,
)

ROOT = Path(__file__).resolve().parents[1]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = write_text(tmp_path / "a" / "list.json", "old")
    with pytest.raises(RuntimeError), replacing(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert path.read_text() == "old" and leftovers(tmp_path) == []


def test_the_new_file_replaces_the_old_whole_with_the_mode_asked(tmp_path):
    path = write_json(tmp_path / "tokens.json", [1, 2], mode=0o600)
    assert path.read_text() == "[1, 2]"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    (tmp_path / ".tokens.json.0123abcd.tmp").write_text("a killed writer's")
    assert [p.name for p in remove_leftovers(tmp_path)] == [".tokens.json.0123abcd.tmp"]
    assert [p.name for p in tmp_path.iterdir()] == ["tokens.json"]


def test_a_folder_is_swapped_whole_or_left_as_it_was(tmp_path):
    folder = tmp_path / "v3"
    with replacing_dir(folder) as tmp:
        (tmp / "model.json").write_text("old")
    with pytest.raises(RuntimeError), replacing_dir(folder) as tmp:
        (tmp / "model.json").write_text("half")
        raise RuntimeError("killed")
    assert (folder / "model.json").read_text() == "old"
    with replacing_dir(folder) as tmp:
        (tmp / "booster.txt").write_text("new")
    assert sorted(p.name for p in folder.iterdir()) == ["booster.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["v3"]


def test_no_module_writes_a_file_of_its_own_by_a_temporary_rename():
    """The helper is the one way: no hand-made ``.tmp`` + rename elsewhere."""
    own = re.compile(r"with_suffix\(\"\.tmp\"\)|tmp\.replace\(|os\.replace\(tmp")
    found = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "salespilot").rglob("*.py")
        if p.name != "atomic.py" and own.search(p.read_text())
    ]
    assert found == []
