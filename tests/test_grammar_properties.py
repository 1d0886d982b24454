"""Properties of the forgiving grammar (SPEC §3): what people say around a keyword reads as the
keyword, and nothing said around one turns a sentence that is not a command into one."""

from __future__ import annotations

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from steward.flows.grammar import CATEGORIES, LEAD_INS, TABLE, Args, Intent, normalise, parse

# No example database: failures are reported with their text, and nothing is kept between runs.
quiet = settings(database=None)

# Every keyword that is a word (not the punctuation ？ / ? / #), with its intent.
KEYWORDS = [
    (word, intent)
    for intent in TABLE
    for word in intent.zh + intent.en
    if word.replace(" ", "").isalnum()
]
ROW = {i.name: i for i in TABLE}
ZH_KEYWORDS = [(w, i) for w, i in KEYWORDS if not w.isascii()]
ONE_CHARACTER = [(w, i) for w, i in ZH_KEYWORDS if len(w) == 1]
ZH_LEAD_INS = [w for w in LEAD_INS if not w.isascii()]
CATEGORY_WORDS = [w for c in CATEGORIES for w in c.words]
NUMERALS = "零一二两三四五六七八九十"
TAKES_A_NUMBER = (Args.NUMBER, Args.NUMBER_NOTE, Args.DAYS)
# Characters a command could be made of. A sentence whose first word after any lead-ins starts
# with none of them starts no command, even joined to the lead-in (请 + 假期 would be 请假期).
COMMAND_CHARACTERS = {c for w, _ in KEYWORDS for c in w} | {c for w in LEAD_INS for c in w}

cjk = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
# Who or when a sentence is about, and then anything: 他今天…, 老王说…, 昨天…
SUBJECTS = ("他", "她们", "老王", "昨天", "刚才", "邻居", "小区里", "听说")
subject = st.one_of(st.sampled_from(SUBJECTS), st.text(cjk, min_size=1, max_size=4)).filter(
    lambda s: s[0] not in COMMAND_CHARACTERS
)


def _chinese(n: int) -> str:
    """Write 1-99 in Chinese numerals, independently of the grammar's reader."""
    digits = "〇一二三四五六七八九"
    tens, units = divmod(n, 10)
    if tens == 0:
        return digits[units]
    return ("" if tens == 1 else digits[tens]) + "十" + (digits[units] if units else "")


def _lead_in_run(lead_ins: list[str], spaced: bool) -> str:
    # A Latin lead-in needs a space after it; a Chinese one may run into the keyword.
    return "".join(w + (" " if spaced or w.isascii() else "") for w in lead_ins)


# --- nothing said around a keyword makes a sentence a command ------------------------------


@quiet
@given(
    lead_ins=st.lists(st.sampled_from(ZH_LEAD_INS), max_size=2),
    about=subject,
    keyword=st.sampled_from(ZH_KEYWORDS),
    rest=st.text(max_size=8),
)
@example(lead_ins=[], about="他今天", keyword=("签到", ROW["check_in"]), rest="了没有")
@example(lead_ins=["我要"], about="他", keyword=("请假", ROW["leave"]), rest="")
def test_a_keyword_in_the_middle_of_a_sentence_is_not_a_command(
    lead_ins: list[str], about: str, keyword: tuple[str, Intent], rest: str
) -> None:
    # Lead-ins are skipped only when a keyword follows at once: 我要他请假 is not a leave.
    text = "".join(lead_ins) + about + keyword[0] + rest
    assert parse(text).intent == "unknown", text


@quiet
@given(keyword=st.sampled_from(ONE_CHARACTER), second=cjk, rest=st.text(cjk, max_size=4))
@example(keyword=("报", ROW["report"]), second="纸", rest="")
@example(keyword=("到", ROW["check_in"]), second="底", rest="怎么回事")
@example(keyword=("是", ROW["fix_confirmed"]), second="不", rest="是")
@example(keyword=("分", ROW["points"]), second="开", rest="")
def test_a_one_character_keyword_inside_a_word_is_not_a_command(
    keyword: tuple[str, Intent], second: str, rest: str
) -> None:
    word, intent = keyword
    after = second + rest
    # Excluded, as these do make commands: a longer keyword (报名, 报告, 分数), a category word
    # (报垃圾), a number where one is expected (查十二).
    assume(not any(w.startswith(word + second) for w, _ in KEYWORDS))
    assume(not any(after.startswith(c) for c in CATEGORY_WORDS))
    assume(not (intent.args in TAKES_A_NUMBER and second in NUMERALS))
    assert parse(word + after).intent == "unknown", word + after


# --- what people say around a keyword reads as the keyword ---------------------------------


@quiet
@given(
    lead_ins=st.lists(st.sampled_from(LEAD_INS), min_size=1, max_size=3),
    spaced=st.booleans(),
    keyword=st.sampled_from(KEYWORDS),
    number=st.none() | st.integers(min_value=1, max_value=999),
)
@example(lead_ins=["请"], spaced=False, keyword=("请假", ROW["leave"]), number=None)
@example(lead_ins=["请", "帮我"], spaced=False, keyword=("签退", ROW["check_out"]), number=None)
def test_a_lead_in_before_a_keyword_reads_as_the_keyword(
    lead_ins: list[str], spaced: bool, keyword: tuple[str, Intent], number: int | None
) -> None:
    word, intent = keyword
    text = _lead_in_run(lead_ins, spaced) + word + ("" if number is None else f" {number}")
    parsed = parse(text)
    assert (parsed.intent, parsed.confirm) == (intent.name, False), text


@quiet
@given(keyword=st.sampled_from([k for k in ZH_KEYWORDS if len(k[0]) > 1]), data=st.data())
def test_a_space_inside_a_chinese_keyword_reads_as_the_keyword(
    keyword: tuple[str, Intent], data: st.DataObject
) -> None:
    word, _ = keyword
    at = data.draw(st.integers(min_value=1, max_value=len(word) - 1))
    tail = data.draw(st.sampled_from(["", " 12", " 东巷"]))
    assert parse(word[:at] + " " + word[at:] + tail) == parse(word + tail)


@quiet
@given(n=st.integers(min_value=1, max_value=99), lead_in=st.sampled_from(["", *ZH_LEAD_INS]))
@example(n=2, lead_in="")
@example(n=30, lead_in="我想")
def test_chinese_numerals_read_where_a_number_is_expected(n: int, lead_in: str) -> None:
    written = _chinese(n)
    assert parse(f"{lead_in}请假{written}天").days == n
    for keyword in ("查", "是", "否"):
        assert parse(f"{lead_in}{keyword}{written}").report == n
        assert parse(f"{lead_in}{keyword} {written}号").report == n
    if n == 2:
        assert parse(f"{lead_in}请假两天").days == 2


def _full_width(text: str, which: list[bool]) -> str:
    """Swap some ASCII characters for their full-width forms (ＩＮ, １, ？, ideographic space)."""
    out = []
    for char, swap in zip(text, which + [False] * len(text), strict=False):
        if swap and char == " ":
            char = "\u3000"
        elif swap and "!" <= char <= "~":
            char = chr(ord(char) + 0xFEE0)
        out.append(char)
    return "".join(out)


@quiet
@given(
    keyword=st.sampled_from([w for i in TABLE for w in i.zh + i.en]),
    rest=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12),
    which=st.lists(st.booleans(), max_size=20),
    in_step=st.booleans(),
)
@example(keyword="IN", rest="", which=[True, True], in_step=False)
@example(keyword="R", rest=" 4 blocked exit", which=[True] * 20, in_step=False)
def test_full_width_forms_read_the_same(
    keyword: str, rest: str, which: list[bool], in_step: bool
) -> None:
    text = keyword + rest
    wide = _full_width(text, which)
    assert normalise(wide) == normalise(text)
    assert parse(wide, in_step=in_step) == parse(text, in_step=in_step), (wide, text)
