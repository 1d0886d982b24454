"""Parsing texts with the grammar (the micro-benchmark kept from the first benchmarks/run.py)."""

from __future__ import annotations

import time

from benchmarks import section
from benchmarks.report import info

TEXTS = [
    "签到",
    "签退",
    "积分",
    "报 1 5号楼门口垃圾堆放",
    "CHEKIN",
    "今天天气真好",
    "R 4 fire exit",
    "#123",
]
ROUNDS = 20_000
FIGURE = "grammar parse"


async def run(emit: section.Emitter, args: list[str]) -> None:
    emit.expect([(FIGURE, "-")])
    from steward.flows import grammar

    for text in TEXTS:  # warm any caches the grammar builds on first use
        grammar.parse(text)
    start = time.perf_counter()
    for i in range(ROUNDS):
        grammar.parse(TEXTS[i % len(TEXTS)])
    elapsed = time.perf_counter() - start
    note = f"{ROUNDS:,} texts ({len(TEXTS)} kinds), {elapsed * 1e6 / ROUNDS:.1f} µs each"
    emit(info(FIGURE, ROUNDS / elapsed, "texts/s", note))


if __name__ == "__main__":
    section.main(run)
