"""Terminal tables that stay readable at any width: a cell is wrapped at its words, never cut.

Rich shrinks a table that is wider than the terminal by cutting cells (``R00…``, ``1.…``), even
when wrapping at the words would have fitted. Here each column gets a width between its longest
word and its longest cell, the widest columns giving way first; a table whose longest words do
not fit side by side is printed as several tables, each with the leading key columns and as many
of the others as fit (like a wide DataFrame's repr), and as one block per row only when even a
single column beside the keys does not fit.
"""

from __future__ import annotations

from dataclasses import replace

from rich.console import Console
from rich.measure import Measurement
from rich.table import Column, Table

_UNBOUNDED = 10_000


def print_table(console: Console, table: Table, *, keys: int = 1) -> None:
    """Print ``table`` within the console's width without cutting a cell; ``keys`` leading
    columns (the row's name) are repeated in every part when the columns are split."""
    width = console.width
    fitted = _fit(console, table, width)
    if fitted is not None:
        console.print(fitted)
        return
    key_cols = list(range(min(keys, len(table.columns))))
    parts: list[list[int]] = []
    current: list[int] = []
    for i in range(len(key_cols), len(table.columns)):
        # a part holds what fits unwrapped; wrapping is for a part of a single column
        trial = _part(table, key_cols + current + [i])
        if current and _measure(console, trial).maximum > width:
            parts.append(current)
            current = [i]
        else:
            current.append(i)
    if current:
        parts.append(current)
    fitted_parts = [
        _fit(console, _part(table, key_cols + p, title=n == 0, caption=n == len(parts) - 1), width)
        for n, p in enumerate(parts)
    ]
    if any(p is None for p in fitted_parts):
        _print_records(console, table)
        return
    for part in fitted_parts:
        console.print(part)


def _measure(console: Console, renderable) -> Measurement:
    return Measurement.get(console, console.options.update_width(_UNBOUNDED), renderable)


def _fit(console: Console, table: Table, width: int) -> Table | None:
    """A copy of ``table`` whose column widths fit ``width`` with no word cut, or None."""
    ranges = []
    for column in table.columns:
        cells = [_measure(console, c) for c in (column.header, *column.cells)]
        high = max(m.maximum for m in cells)
        ranges.append((high if column.no_wrap else max(m.minimum for m in cells), high))
    whole = _measure(console, table)
    # borders and padding: what the table adds to its columns' content
    extra = whole.maximum - sum(high for _, high in ranges)
    if extra + sum(low for low, _ in ranges) > width:
        return None
    widths = [high for _, high in ranges]
    excess = extra + sum(widths) - width
    while excess > 0:
        i = max(
            (j for j, (low, _) in enumerate(ranges) if widths[j] > low), key=lambda j: widths[j]
        )
        widths[i] -= 1
        excess -= 1
    fitted = _part(table, list(range(len(table.columns))))
    fitted.columns = [replace(c, width=w) for c, w in zip(fitted.columns, widths, strict=True)]
    return fitted


def _part(table: Table, columns: list[int], *, title: bool = True, caption: bool = True) -> Table:
    """A table of some of ``table``'s columns (same rows, style and box)."""
    part = Table(
        title=table.title if title else None,
        caption=table.caption if caption else None,
        title_justify=table.title_justify,
        caption_justify=table.caption_justify,
        box=table.box,
        show_header=table.show_header,
        show_lines=table.show_lines,
        show_edge=table.show_edge,
        padding=table.padding,
        pad_edge=table.pad_edge,
        header_style=table.header_style,
        title_style=table.title_style,
        caption_style=table.caption_style,
    )
    part.columns = [replace(table.columns[i], _index=j) for j, i in enumerate(columns)]
    part.rows = list(table.rows)
    return part


def _print_records(console: Console, table: Table) -> None:
    """One block per row: each column's header beside its value, wrapped at the words."""
    if table.title:
        console.print(table.title, style=table.title_style or "italic")
    for r in range(table.row_count):
        block = Table.grid(
            Column(style="bold", no_wrap=True), Column(overflow="fold"), padding=(0, 1)
        )
        for column in table.columns:
            block.add_row(column.header, list(column.cells)[r])
        console.print(block)
        console.print()
    if table.caption:
        console.print(table.caption, style=table.caption_style or "dim")
