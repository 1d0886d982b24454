"""How a reliability test reports the numbers it used: a printed line (shown in the -rA summary
and with -s) and the same values as junit properties."""

from __future__ import annotations

from collections.abc import Callable

Record = Callable[[str, object], None]


def report(record_property: Record, test: str, **numbers: object) -> None:
    """Print `test: name=value ...` and record each value as a property of the test."""
    for name, value in numbers.items():
        record_property(name, value)
    print(f"{test}: " + " ".join(f"{name}={value}" for name, value in numbers.items()))
