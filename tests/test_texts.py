"""Every reply template, in both languages, with long but realistic values, fits its SMS budget."""

from __future__ import annotations

import string

import pytest

from steward.flows import grammar, texts
from steward.flows.segments import segment_count

# The longest values a real reply carries: a four-character Chinese name, a long English first
# name, an afternoon clock time, multi-hour durations, four-digit balances.
LONGEST = {
    "zh": {
        "name": "欧阳秀英",
        "time": "23:59",
        "duration": texts.duration(239, "zh"),
        "total": texts.duration(479, "zh"),
        "remaining": texts.duration(119, "zh"),
        "points": 10,
        "max_hours": "4",
        "balance": 12345,
        "month": 310,
        "rank": 488,
        "ranked": 999,
        "keyword": "CHECKOUT",
        "minutes": 10,
        "menu": grammar.help_text("zh"),
        "number": 12345,
        "category": "私搭乱建",
        "place": "新开河街东巷",
        "urgent": "【紧急】",
        "duplicate": "（疑似与#12344重复）",
        "reporter": "欧阳秀英",
        "phone": "138****8001",
        "description": "5号楼门口垃圾堆放",
        "department": "社区居委会",
        "note": "已清理干净",
        "status": texts.status_name("resolved", "zh"),
        "when": "11月23日10:07",
        "example": "驳回12 重复上报",
        "hours": 48,
        "community": "新开河社区",
        "date": "11月23日",
        "days": 30,
        "until": "12月22日",
        "partner": "欧阳秀英",
        "pair": "A12",
        "zone": "新开河街东巷",
        "count": 6,
        "reason": "已连续6次排班没有巡查",
        "scope": "新开河社区",
        "body": "欧阳秀英，您已连续2次排班没有巡查。一切还好吗？",
        "codes": "（A1 A3 A12 B7 B10...）",
        "item": "环保购物袋和雨伞各一",
        "change": "-120",
        "age": 107,
        "marks": "，党员",
        "experience": "在社区做过三年垃圾分类督导员...",
        "lane": "新开河街东巷和西巷...",
        "question": "您想认领哪条街巷？请回复街巷名，不确定请回复“无”。",
        "candidates": "候选：#12345欧阳秀英（党员、有经验）、#12346欧阳秀兰（党员、有经验）、#12347欧阳秀华（党员）",
    },
    "en": {
        "name": texts.short_name("Christopher Alexander", "en"),
        "time": "23:59",
        "duration": texts.duration(239, "en"),
        "total": texts.duration(479, "en"),
        "remaining": texts.duration(119, "en"),
        "points": 10,
        "max_hours": "4",
        "balance": 12345,
        "month": 310,
        "rank": 488,
        "ranked": 999,
        "keyword": "CHECKOUT",
        "minutes": 10,
        "menu": grammar.help_text("en"),
        "number": 12345,
        "category": "resident info change",
        "place": "Xinkaihe East Lane",
        "urgent": "URGENT ",
        "duplicate": " (maybe same as #12344)",
        "reporter": "Christopher",
        "phone": "138****8001",
        "description": "rubbish piled at the gate of block 5",
        "department": "community office",
        "note": "cleaned up",
        "status": texts.status_name("resolved", "en"),
        "when": "23 Nov 10:07",
        "example": "REJECT 12 duplicate",
        "hours": 48,
        "community": "Xinkaihe",
        "date": "23 Nov",
        "days": 30,
        "until": "22 Dec",
        "partner": "Christopher",
        "pair": "A12",
        "zone": "Xinkaihe East Lane",
        "count": 6,
        "reason": "fewer than half the patrols done in 30 days",
        "scope": "Xinkaihe",
        "body": "Christopher, you have missed 2 patrols in a row. Is everything all right?",
        "codes": " (A1 A3 A12 B7 B10...)",
        "item": "a reusable shopping bag and an umbrella",
        "change": "-120",
        "age": 107,
        "marks": ", Party member",
        "experience": "three years as a waste sorti...",
        "lane": "Xinkaihe East...",
        "question": "Which lane would you like to look after? Reply with its name, or NONE if unsure.",
        "candidates": " Candidates: #12345 Christopher (Party member, experienced), #12346 Alexander (Party member), #12347 Jonathan",
    },
}

CASES = [(key, lang) for key in sorted(texts.TEXTS) for lang in ("zh", "en")]


@pytest.mark.parametrize(("key", "language"), CASES, ids=[f"{k}-{lang}" for k, lang in CASES])
def test_template_fits_its_budget(key: str, language: str) -> None:
    body = texts.render(key, language, **LONGEST[language])
    limit = 1 if key in texts.ONE_SEGMENT else 2
    assert segment_count(body) <= limit, f"{key}/{language}: {body!r}"
    assert "{" not in body  # every placeholder was filled


@pytest.mark.parametrize("key", sorted(texts.TEXTS))
def test_both_languages_take_the_same_values(key: str) -> None:
    fields = {
        lang: {name for _, name, _, _ in string.Formatter().parse(texts.TEXTS[key][lang]) if name}
        for lang in ("zh", "en")
    }
    assert fields["zh"] == fields["en"]


def test_english_replies_stay_in_the_cheap_alphabet() -> None:
    # One stray curly quote or emoji turns a 160-character SMS into a 70-character one.
    from steward.flows.segments import is_gsm7

    for key in texts.TEXTS:
        body = texts.render(key, "en", **LONGEST["en"])
        assert is_gsm7(body), f"{key}: {body!r}"


def test_help_menus_fit_one_segment() -> None:
    assert segment_count(grammar.help_text("zh")) == 1
    assert segment_count(grammar.help_text("en")) == 1


@pytest.mark.parametrize(
    ("minutes", "zh", "en"),
    [
        (125, "2小时5分", "2 h 5 min"),
        (120, "2小时", "2 h"),
        (55, "55分钟", "55 min"),
        (0, "0分钟", "0 min"),
    ],
)
def test_durations_read_naturally(minutes: int, zh: str, en: str) -> None:
    assert texts.duration(minutes, "zh") == zh
    assert texts.duration(minutes, "en") == en


@pytest.mark.parametrize("language", ["zh", "en"])
def test_the_category_menu_fits_two_segments(language: str) -> None:
    from steward.flows.reports import category_menu

    for key in ("report_menu", "report_menu_with_photo"):
        body = texts.render(key, language, menu=category_menu(language))
        assert segment_count(body) <= 2, body
        assert all(str(code) in body for code in range(1, 10))


@pytest.mark.parametrize(
    ("language", "sentence"),
    [("zh", "楼道里堆满了杂物，"), ("en", "boxes block the stairs, ")],
)
def test_a_long_description_is_cut_to_keep_an_alert_in_two_segments(
    language: str, sentence: str
) -> None:
    from steward.flows.reports import fit_two_segments

    values = dict(LONGEST[language])

    def build(description: str) -> str:
        return texts.render("report_alert", language, **{**values, "description": description})

    body = fit_two_segments(build, sentence * 30)
    assert segment_count(body) == 2
    assert sentence.strip("，, ") in body
    assert body.rstrip("”受理").endswith(str(values["number"]))  # the action stays readable
    assert body.count(sentence.strip("，, ")) < 30


def test_an_english_lead_still_reads_part_of_a_chinese_description() -> None:
    from steward.flows.reports import fit_two_segments

    values = {
        **LONGEST["en"],
        "urgent": "",
        "duplicate": "",
        "category": "sanitation",
        "place": "East Lane",
    }

    def build(description: str) -> str:
        return texts.render("report_alert", "en", **{**values, "description": description})

    body = fit_two_segments(build, "5号楼门口垃圾堆放，已经三天没人清理了")
    assert segment_count(body) <= 2
    assert "5号楼门口" in body
