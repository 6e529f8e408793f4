"""One message for a name the user mistyped (a model, a team): the closest known ones first."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def _key(name: str) -> str:
    return " ".join(str(name).casefold().replace("-", "_").split())


def close_names(given: str, known: Iterable[str], n: int = 3) -> list[str]:
    """Known names close to ``given`` (case, spacing and ``-``/``_`` aside), closest first."""
    by_key: dict[str, str] = {}
    for name in sorted({str(k) for k in known}):
        by_key.setdefault(_key(name), name)
    return [by_key[k] for k in difflib.get_close_matches(_key(given), list(by_key), n, 0.6)]


def did_you_mean(given: str, known: Iterable[str]) -> str:
    """``did you mean 'EMEA North'?`` (the close names of :func:`close_names`), or ``""``."""
    close = close_names(given, known)
    return f"did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def unknown_name(kind: str, given: str, known: Iterable[str]) -> str:
    """``unknown team 'EMEA Nort'; did you mean 'EMEA North'? (teams: APAC, EMEA North)``."""
    names = sorted({str(k) for k in known})
    hint = did_you_mean(given, names)
    return f"unknown {kind} {given!r}{'; ' + hint if hint else ''} ({kind}s: {', '.join(names)})"


def display_name(value: str) -> str:
    """A snake_case category as people write it: ``custom_solution`` -> ``Custom solution``
    (any other value is left as it is)."""
    text = str(value)
    if "_" not in text:
        return text
    words = text.replace("_", " ").strip()
    return words[:1].upper() + words[1:]
