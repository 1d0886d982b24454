"""Figures, their targets and verdicts; the printed table and benchmarks/results.json.

A figure is a `Row`: a name, a value with its unit (or `None` when it could not be measured,
with the reason in `note`), the target as text, and a verdict: pass, miss, info (no target) or
n/a. Sections run as child processes (see run.py) and hand their rows back as JSON.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PASS, MISS, INFO, NA = "pass", "miss", "info", "n/a"


@dataclass
class Row:
    figure: str
    value: float | None
    unit: str
    target: str
    status: str
    note: str = ""
    # How to show the value when it is not a plain number (e.g. "> 45 s" for a run stopped at
    # its time limit); the number in `value` is then the bound, never an estimate.
    shown: str | None = None

    def display_value(self) -> str:
        if self.shown is not None:
            return self.shown
        if self.value is None:
            return "n/a"
        return f"{fmt_number(self.value)} {self.unit}".strip()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(data: dict[str, Any]) -> Row:
        return Row(**data)


def fmt_number(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def at_least(
    figure: str, value: float, unit: str, minimum: float, note: str = "", shown: str | None = None
) -> Row:
    target = f">= {fmt_number(minimum)} {unit}".strip()
    return Row(figure, value, unit, target, PASS if value >= minimum else MISS, note, shown)


def at_most(
    figure: str, value: float, unit: str, maximum: float, note: str = "", shown: str | None = None
) -> Row:
    target = f"<= {fmt_number(maximum)} {unit}".strip()
    return Row(figure, value, unit, target, PASS if value <= maximum else MISS, note, shown)


def info(figure: str, value: float, unit: str, note: str = "", shown: str | None = None) -> Row:
    return Row(figure, value, unit, "-", INFO, note, shown)


def not_measured(figure: str, reason: str, target: str = "-") -> Row:
    return Row(figure, None, "", target, NA, reason)


# ---- the table --------------------------------------------------------------------------------

COLUMNS = ("figure", "value", "target", "result")
NOTE_WIDTH = 100


def table(rows: Sequence[Row]) -> str:
    cells = [[r.figure, r.display_value(), r.target, r.status] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(COLUMNS)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(COLUMNS, widths, strict=True)), line]
    for row, cell in zip(rows, cells, strict=True):
        out.append("  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)).rstrip())
        if row.note:
            for part in textwrap.wrap(row.note, NOTE_WIDTH):
                out.append("      " + part)
    counts = {s: sum(r.status == s for r in rows) for s in (PASS, MISS, INFO, NA)}
    out.append(line)
    out.append(", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(out)


def write_json(path: Path, rows: Sequence[Row], meta: dict[str, Any]) -> None:
    data = {**meta, "figures": [r.to_json() for r in rows]}
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
