"""The service-hours export (谁组织谁记录) and the file layout the office's reports share.

One row per volunteer per month, the way the national volunteer service system takes it: 姓名,
志愿者编号, 手机, 服务时长 (confirmed hours, one decimal), 服务次数, 服务内容, 组织单位, then a
totals row and a line saying how many unconfirmed sessions were left out.

The layout part (`Table`, `to_csv`, `to_xlsx`, `to_text`) is shared with the assessment: cells
keep their type (numbers stay numbers) and each column says how it is shown.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from steward.flows.points import Period

Cell = str | int | float | None


class Shown(StrEnum):
    """How a column's numbers are written."""

    TEXT = "text"
    INT = "int"
    ONE_DECIMAL = "one_decimal"
    PERCENT = "percent"  # the cell holds a share (0.5), shown as 50.0%


@dataclass(frozen=True)
class Column:
    title: str
    shown: Shown = Shown.TEXT


@dataclass(frozen=True)
class Table:
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]
    totals: tuple[Cell, ...] | None = None
    notes: tuple[str, ...] = ()


# ---- the hours export ----------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceLine:
    """A volunteer's confirmed service in one zone over the month (as the ledger sums it)."""

    volunteer_id: int
    name: str
    volunteer_no: str
    phone: str  # as the file shows it (whole: the export is for the office alone)
    street: str
    community: str
    zone: str
    minutes: int
    sessions: int


@dataclass(frozen=True)
class HoursMonth:
    lines: tuple[ServiceLine, ...]
    unconfirmed_sessions: int  # closed automatically and never confirmed: not counted


_HEADERS = {
    "zh": ("姓名", "志愿者编号", "手机", "服务时长", "服务次数", "服务内容", "组织单位"),
    "en": (
        "Name",
        "Volunteer no.",
        "Phone",
        "Service hours",
        "Services",
        "Service content",
        "Organising unit",
    ),
}
_WORDS = {
    "zh": {
        "title": "志愿服务时长 {month}",
        "content": "小巷管家巡查",
        "content_in": "小巷管家巡查（{zones}）",
        "total": "合计（{count}人）",
        "left_out": "未计入：{count}次巡查未经片长确认。",
    },
    "en": {
        "title": "Volunteer service hours {month}",
        "content": "Alley steward patrol",
        "content_in": "Alley steward patrol ({zones})",
        "total": "Total ({count} volunteers)",
        "left_out": "Not counted: {count} patrol session(s) not confirmed by a lead.",
    },
}


def hours(minutes: int) -> float:
    """Minutes as hours with one decimal, halves rounded up (as a person would)."""
    return float((Decimal(minutes) / 60).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def hours_table(period: Period, data: HoursMonth, language: str) -> Table:
    """The month's service record, one row per volunteer, with totals and what was left out."""
    lang = language if language in _HEADERS else "zh"
    words = _WORDS[lang]
    kinds = (Shown.TEXT,) * 3 + (Shown.ONE_DECIMAL, Shown.INT) + (Shown.TEXT,) * 2
    columns = tuple(Column(t, k) for t, k in zip(_HEADERS[lang], kinds, strict=True))
    rows = tuple(_row(lines, words) for lines in _by_volunteer(data.lines))
    # The totals add up the rounded hours shown, so a SUM in Excel agrees with the file.
    total_hours = float(sum(Decimal(str(row[3])) for row in rows))
    totals: tuple[Cell, ...] = (
        words["total"].format(count=len(rows)),
        None,
        None,
        total_hours,
        sum(int(row[4] or 0) for row in rows),
        None,
        None,
    )
    return Table(
        words["title"].format(month=period.label),
        columns,
        rows,
        totals,
        (words["left_out"].format(count=data.unconfirmed_sessions),),
    )


def _by_volunteer(lines: Sequence[ServiceLine]) -> list[list[ServiceLine]]:
    grouped: dict[int, list[ServiceLine]] = {}
    for line in lines:
        grouped.setdefault(line.volunteer_id, []).append(line)
    # A month whose corrections cancel every minute leaves nothing to record.
    kept = [group for group in grouped.values() if sum(g.minutes for g in group) > 0]
    return sorted(kept, key=lambda g: (g[0].street, g[0].community, g[0].name, g[0].volunteer_id))


def _row(lines: list[ServiceLine], words: dict[str, str]) -> tuple[Cell, ...]:
    first = lines[0]
    # A volunteer who moved lanes in the month lists both, the one served longest first.
    zones = [line.zone for line in sorted(lines, key=lambda x: -x.minutes) if line.zone]
    listed = "、".join(dict.fromkeys(zones))
    described = words["content_in"].format(zones=listed) if zones else words["content"]
    return (
        first.name,
        first.volunteer_no,
        first.phone,
        hours(sum(line.minutes for line in lines)),
        sum(line.sessions for line in lines),
        described,
        f"{first.street}/{first.community}",
    )


# ---- writing tables ------------------------------------------------------------------------

FORMATS = ("text", "csv", "xlsx")


def write(tables: Sequence[Table], fmt: str) -> bytes:
    """The tables as a file of format `fmt` (text, csv or xlsx)."""
    if fmt == "csv":
        return to_csv(tables)
    if fmt == "xlsx":
        return to_xlsx(tables)
    if fmt == "text":
        return to_text(tables).encode("utf-8")
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def shown(cell: Cell, how: Shown) -> str:
    """A cell as text (CSV and the terminal); an empty cell stays empty."""
    if cell is None:
        return ""
    if how is Shown.PERCENT and isinstance(cell, int | float):
        return f"{cell * 100:.1f}%"
    if how is Shown.ONE_DECIMAL and isinstance(cell, int | float):
        return f"{cell:.1f}"
    return str(cell)


def _lines(table: Table) -> list[list[str]]:
    body = [*table.rows, *([table.totals] if table.totals else [])]
    kinds = [c.shown for c in table.columns]
    return [[shown(cell, how) for cell, how in zip(row, kinds, strict=True)] for row in body]


def to_csv(tables: Sequence[Table]) -> bytes:
    """UTF-8 with a BOM (so Excel reads the Chinese); one header row per table.

    A single table starts with its header, as an importer wants; several are each preceded by
    their title and separated by a blank line.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for index, table in enumerate(tables):
        if len(tables) > 1:
            if index:
                writer.writerow([])
            writer.writerow([table.title])
        writer.writerow([c.title for c in table.columns])
        writer.writerows(_lines(table))
        if table.notes:
            writer.writerow([])
            writer.writerows([note] for note in table.notes)
    return out.getvalue().encode("utf-8-sig")


def width(text: str) -> int:
    """How many columns text takes in a terminal or a spreadsheet (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def to_text(tables: Sequence[Table]) -> str:
    """Aligned columns for a terminal; an empty cell shows as '-'."""
    blocks = []
    for table in tables:
        head = [c.title for c in table.columns]
        body = [[cell or "-" for cell in row] for row in _lines(table)]
        sizes = [max(width(row[i]) for row in [head, *body]) for i in range(len(head))]
        right = [c.shown is not Shown.TEXT for c in table.columns]
        lines = [table.title]
        for row in [head, *body]:
            cells = [_pad(cell, size, r) for cell, size, r in zip(row, sizes, right, strict=True)]
            lines.append("  ".join(cells).rstrip())
        lines.extend(table.notes)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _pad(text: str, size: int, right: bool) -> str:
    gap = " " * (size - width(text))
    return gap + text if right else text + gap


_NUMBER_FORMATS = {Shown.INT: "0", Shown.ONE_DECIMAL: "0.0", Shown.PERCENT: "0.0%"}


def to_xlsx(tables: Sequence[Table]) -> bytes:
    """One sheet per table: a styled, frozen header, sized columns, numbers stored as numbers."""
    from openpyxl import Workbook  # imported here: only the office's exports need it

    book = Workbook()
    book.remove(book.active)
    for table in tables:
        _sheet(book, table)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _sheet(book: Any, table: Table) -> None:
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    # Sheet names: at most 31 characters, none of []:*?/\ (Excel's rules).
    sheet = book.create_sheet(title="".join(c for c in table.title if c not in "[]:*?/\\")[:31])
    sheet.append([c.title for c in table.columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", start_color="DDEBF7")
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        cell.border = Border(bottom=Side(style="thin"))
    sheet.freeze_panes = "A2"
    for row in table.rows:
        sheet.append(list(row))
    if table.totals:
        sheet.append(list(table.totals))
        for cell in sheet[sheet.max_row]:
            cell.font = Font(bold=True)
            cell.border = Border(top=Side(style="thin"))
    for index, column in enumerate(table.columns, start=1):
        fmt = _NUMBER_FORMATS.get(column.shown)
        if fmt:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                cell.number_format = fmt
        texts = [column.title, *(shown(r[index - 1], column.shown) for r in _all(table))]
        sheet.column_dimensions[get_column_letter(index)].width = min(
            max(width(t) for t in texts) + 2, 60
        )
    for note in table.notes:
        sheet.append([])
        sheet.append([note])
        sheet.cell(row=sheet.max_row, column=1).font = Font(italic=True)


def _all(table: Table) -> list[tuple[Cell, ...]]:
    return [*table.rows, *([table.totals] if table.totals else [])]
