"""How a section runs: as `python -m benchmarks.<module> --out FILE [args]`, its own process.

A process per section keeps the sections apart (tortoise's global connections, its write to
os.environ["TIMEZONE"], memory, a hang), and lets run.py stop one at its time limit. A section
first announces the figures it will report (as "not reached"), then replaces each as it is
measured; the file is rewritten after every change, so a section stopped half-way still hands
back what it measured and says what it did not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import traceback
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from benchmarks.report import NA, Row, not_measured

NOT_REACHED = "not reached: the section stopped before measuring it"


class Emitter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[Row] = []

    def expect(self, figures: Sequence[tuple[str, str]]) -> None:
        """Announce (figure, target) pairs, each 'n/a: not reached' until measured."""
        for figure, target in figures:
            self._put(not_measured(figure, NOT_REACHED, target))
        self._write()

    def __call__(self, *rows: Row) -> None:
        for row in rows:
            self._put(row)
        self._write()

    def fail_pending(self, reason: str) -> None:
        """Every figure still 'not reached' becomes n/a with `reason`."""
        for row in self.rows:
            if row.status == NA and row.note == NOT_REACHED:
                row.note = reason
        self._write()

    def _put(self, row: Row) -> None:
        for i, old in enumerate(self.rows):
            if old.figure == row.figure:
                self.rows[i] = row
                return
        self.rows.append(row)

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps([r.to_json() for r in self.rows], ensure_ascii=False))
        tmp.replace(self.path)


Section = Callable[[Emitter, list[str]], Coroutine[Any, Any, None]]


def main(section: Section) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    known, rest = parser.parse_known_args()
    emit = Emitter(known.out)
    emit()  # create the file
    try:
        asyncio.run(section(emit, rest))
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        emit.fail_pending(f"section failed: {type(exc).__name__}: {exc}")
