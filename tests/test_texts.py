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
