"""The digest's picture for the office group: a week of patrols at a glance, as a PNG.

Bars per day: pairs that finished, finished part of the goal, or did not go out; a line for the
reports filed. Drawn with matplotlib's Agg backend (no screen), with a CJK font when the
machine has one (fonts-wqy-zenhei), so Chinese labels do not come out as boxes.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from steward.flows.digest import DigestData

# WenQuanYi comes in one weight (medium); matplotlib logs each time it uses it for "normal".
logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
_CJK_FONTS = ("WenQuanYi Zen Hei", "Noto Sans CJK SC", "Source Han Sans SC")
_LABELS = {
    "zh": ("完成", "部分", "缺勤", "新上报", "组数", "近{n}天巡查"),
    "en": ("done", "partial", "absent", "new reports", "pairs", "patrols, last {n} days"),
}


def _cjk_fonts() -> list[str]:
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return [name for name in _CJK_FONTS if name in installed]


def week_chart(days: Sequence[DigestData], language: str) -> bytes:
    """A PNG of `days` (oldest first) for one street."""
    cjk = _cjk_fonts()
    if not cjk:
        language = "en"  # without a CJK font, Chinese labels would be empty boxes
    done, partial, absent, reports, pairs, title = _LABELS.get(language, _LABELS["zh"])
    with matplotlib.rc_context({"font.family": [*cjk, "DejaVu Sans"]}):
        figure = Figure(figsize=(6.4, 3.6), dpi=100)
        axes = figure.subplots()
        labels = [f"{d.day.month}/{d.day.day}" for d in days]
        x = list(range(len(days)))
        finished = [d.pairs_done for d in days]
        part = [d.pairs_partial for d in days]
        missed = [d.pairs_absent for d in days]
        axes.bar(x, finished, color="#2e7d32", label=done)
        axes.bar(x, part, bottom=finished, color="#f9a825", label=partial)
        axes.bar(
            x,
            missed,
            bottom=[a + b for a, b in zip(finished, part, strict=True)],
            color="#c62828",
            label=absent,
        )
        filed = axes.twinx()
        filed.plot(x, [d.new_reports for d in days], color="#1565c0", marker="o", label=reports)
        filed.set_ylim(bottom=0)
        filed.yaxis.set_major_locator(MaxNLocator(integer=True))
        filed.set_ylabel(reports)
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xticks(x, labels)
        axes.set_ylabel(pairs)
        street = days[-1].street if days and cjk else ""
        axes.set_title(f"{street} {title.format(n=len(days))}")
        handles, names = axes.get_legend_handles_labels()
        more, more_names = filed.get_legend_handles_labels()
        axes.legend(
            handles + more,
            names + more_names,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.12),
            ncol=4,
            fontsize="small",
            frameon=False,
        )
        figure.tight_layout()
        out = io.BytesIO()
        figure.savefig(out, format="png")
    return out.getvalue()
