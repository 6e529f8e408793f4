"""The README's layout section names the rooms as they are: every package, and only files
that exist where it puts them."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _layout() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    rooms: dict[str, str] = {}
    room = None
    for line in block.splitlines():
        m = re.match(r"(salespilot/\w+/)\s+(.*)", line)
        if m:
            room = m.group(1)
            rooms[room] = m.group(2)
        elif room and line.startswith(" "):
            rooms[room] += " " + line.strip()
    return rooms


def test_every_package_has_its_room_and_every_file_named_exists_there():
    rooms = _layout()
    packages = {
        f"salespilot/{p.name}/"
        for p in (ROOT / "salespilot").iterdir()
        if (p / "__init__.py").exists()
    }
    assert set(rooms) == packages
    for room, text in rooms.items():
        for name in re.findall(r"\b([a-z_]+\.py|[a-z_]+/)(?=[\s,:;)]|$)", text):
            path = ROOT / room / name
            if name == "settings.py":
                path = ROOT / "salespilot" / name
            assert path.exists(), f"README layout names {room}{name}, which does not exist"


def test_every_module_the_docs_name_exists():
    """A file moved to another room takes its mentions in README.md and docs/ with it."""
    texts = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    missing = []
    for doc in texts:
        text = doc.read_text()
        for path in re.findall(r"(?<![.\w])(salespilot/[\w/]+\.py)", text):
            if not (ROOT / path).exists():
                missing.append(f"{doc.name}: {path}")
        for dotted in re.findall(r"\b(salespilot(?:\.[a-z_]+)+)", text):
            if not _resolves(dotted.rstrip(".")):
                missing.append(f"{doc.name}: {dotted}")
    assert missing == []


def _resolves(dotted: str) -> bool:
    """``salespilot.training.fit.leaf_size``: a module, then attributes of it."""
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False
