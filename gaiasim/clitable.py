"""The tables the ``gaiasim`` command prints: readable at 80 columns and when piped, or as CSV or JSON.

A :class:`Tabular` holds plain values (what CSV and JSON carry: ids stay exact integers, times ISO 8601).
As a table it is drawn in the console's width (80 columns when the output is piped): columns whose cells
never wrap (ids, verdicts, numbers) keep their width, text columns fold, and when even so the width cannot
hold every column, the least needed go first (``Column.drop``, highest first), named in a line under the
table with the way to see them all (``--format csv`` or a wider terminal).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

FORMATS = ("table", "csv", "json")
PIPED_WIDTH = 80  # characters a line of a table has when the output is not a terminal
SHOWN_NAMES = 5  # columns left out are named up to this many, then counted
MIN_FOLD_WIDTH = 12  # the narrowest a folding text column is drawn, in characters
_CELL_OVERHEAD = 3  # one space each side of a cell and its right border; the table adds 1 for its left border

VERDICT_STYLE = {"pass": "green", "PASS": "green", "same": "green", "FAIL": "red", "DIFFER": "red", "n/a": "yellow"}


def console() -> Console:
    """The console tables are printed on: the terminal's width on a terminal (or ``$COLUMNS``), 80 columns when
    the output goes to a pipe or a file (rich would take the width of whichever of stdin or stderr is a
    terminal, so ``gaiasim history | grep`` would depend on the window)."""
    piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(width=PIPED_WIDTH if piped else None)


def plain(value: Any) -> str:
    """A value as a table cell shows it: NULL for a missing value, floats to 4 significant digits, times in
    full (ISO 8601)."""
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return str(value)


@dataclass(frozen=True)
class Column:
    name: str
    fold: bool = False  # free text that may fold onto several lines
    drop: int = 0  # 0: always shown; when the width is short, the highest numbers are left out first
    text: Callable[[Any], str] = plain  # how a value reads in the table (CSV and JSON keep the value itself)

    def cell(self, value: Any) -> str:
        shown = self.text(value)
        style = VERDICT_STYLE.get(shown)
        return f"[{style}]{shown}[/]" if style else escape(shown)


@dataclass
class Tabular:
    title: str
    columns: Sequence[Column]
    rows: list[Sequence[Any]]
    notes: list[str] = field(default_factory=list)  # lines printed under the table (not in CSV or JSON)

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip((c.name for c in self.columns), row, strict=True)) for row in self.rows]


def _width(column: Column, cells: list[str]) -> int:
    # A column that never wraps keeps its header on one line too; a folding one breaks it between words.
    header = max((len(word) for word in column.name.split()), default=1) if column.fold else len(column.name)
    longest = max((len(line) for cell in cells for line in cell.splitlines() or [""]), default=0)
    if column.fold:
        words = max((len(word) for cell in cells for word in cell.split()), default=0)
        return max(header, min(longest, max(MIN_FOLD_WIDTH, words)))
    return max(header, longest)


def fitting(t: Tabular, width: int) -> list[int]:
    """Indices of the columns drawn in ``width`` characters: all of them if they fit, else without the most
    droppable ones (and, of the columns that are never dropped, all)."""
    cells = [[c.text(row[i]) for row in t.rows] for i, c in enumerate(t.columns)]
    need = [_width(c, cells[i]) + _CELL_OVERHEAD for i, c in enumerate(t.columns)]
    keep = list(range(len(t.columns)))
    for i in sorted((i for i, c in enumerate(t.columns) if c.drop), key=lambda i: -t.columns[i].drop):
        if 1 + sum(need[k] for k in keep) <= width:
            break
        keep.remove(i)
    return keep


def render(t: Tabular, width: int) -> tuple[Table, list[str]]:
    """The rich table of ``t`` for ``width`` characters, and the names of the columns left out."""
    keep = fitting(t, width)
    table = Table(title=t.title, title_justify="left")
    for i in keep:
        c = t.columns[i]
        table.add_column(c.name, overflow="fold", no_wrap=not c.fold)
    for row in t.rows:
        table.add_row(*(t.columns[i].cell(row[i]) for i in keep))
    return table, [c.name for i, c in enumerate(t.columns) if i not in keep]


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, float) and value != value:
        return None
    return value


def to_json(t: Tabular) -> str:
    """The rows as a JSON array of objects; integers stay exact (a 64-bit id is written digit for digit)."""
    return json.dumps([{k: _json_value(v) for k, v in r.items()} for r in t.records()], indent=1, default=str)


def emit(t: Tabular, fmt: str, console: Console, out: TextIO | None = None) -> None:
    """Print ``t`` as ``fmt`` (table, csv or json)."""
    out = out or sys.stdout
    if fmt == "csv":
        # RFC 4180's CRLF ends a row: Python 3.11's writer quotes a field only for the characters of its line
        # terminator, so with a bare LF a '\r' inside a value would split the row for a reader.
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow([c.name for c in t.columns])
        writer.writerows([["" if v is None else _json_value(v) for v in row] for row in t.rows])
    elif fmt == "json":
        out.write(to_json(t) + "\n")
    else:
        table, left_out = render(t, console.width)
        console.print(table)
        for note in t.notes:
            console.print(note, highlight=False, markup=False)
        if left_out:
            named = ", ".join(left_out) if len(left_out) <= SHOWN_NAMES else \
                f"{', '.join(left_out[:SHOWN_NAMES - 1])} and {len(left_out) - SHOWN_NAMES + 1} more columns"
            console.print(f"({named} left out at {console.width} columns: "
                          "--format csv or a wider terminal shows them)", highlight=False, markup=False)
