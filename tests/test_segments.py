"""SMS segment counting: GSM-7 vs UCS-2, at each boundary."""

from __future__ import annotations

import pytest

from steward.flows.segments import is_gsm7, segment_count


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("中" * 70, 1),
        ("中" * 71, 2),
        ("中" * 134, 2),
        ("中" * 135, 3),
        # one non-GSM character makes the whole text UCS-2
        ("a" * 69 + "中", 1),
        ("a" * 70 + "中", 2),
        ("a" * 159 + "ê", 3),
    ],
    ids=lambda v: f"{len(v)}ch" if isinstance(v, str) else str(v),
)
def test_boundaries(text: str, segments: int) -> None:
    assert segment_count(text) == segments


def test_extension_characters_count_two_septets() -> None:
    assert segment_count("€" * 80) == 1
    assert segment_count("€" * 81) == 2
    assert segment_count("a" * 158 + "{") == 1
    assert segment_count("a" * 159 + "{") == 2
    assert segment_count("a" * 159 + "\f") == 2


def test_an_escape_pair_is_not_split_across_parts() -> None:
    # 306 septets would be two parts, but the euro sign cannot straddle the first boundary.
    assert segment_count("a" * 152 + "€" + "a" * 152) == 3


def test_emoji_count_two_code_units() -> None:
    assert segment_count("😀" * 35) == 1
    assert segment_count("😀" * 36) == 2
    assert segment_count("中" * 68 + "😀") == 1
    assert segment_count("中" * 69 + "😀") == 2
    # a surrogate pair is never split: 134 units, yet three parts
    assert segment_count("中" * 66 + "😀" + "中" * 66) == 3


def test_is_gsm7() -> None:
    assert is_gsm7("Reply 1 IN, 2 OUT @ £5 [ok] ~é")
    assert is_gsm7("")
    assert not is_gsm7("签到")
    assert not is_gsm7("naïve")
    assert not is_gsm7("😀")
    assert not is_gsm7("`")
