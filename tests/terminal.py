"""What "readable at 80 columns" means for a command's output, checked in one place."""

from __future__ import annotations


def assert_readable_at_80(output: str, whole: tuple[str, ...] = ()) -> None:
    """No line past 80 columns, no cell cut with an ellipsis, and each of ``whole`` (ids,
    numbers, names) printed unbroken on one line."""
    wide = [line for line in output.splitlines() if len(line) > 80]
    assert not wide, wide
    assert "…" not in output, output
    for text in whole:
        assert text in output, (text, output)
