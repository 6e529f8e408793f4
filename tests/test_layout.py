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
