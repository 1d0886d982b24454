"""The grammar: the shared corpus of real texts, then our own table covering the same ground."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steward.flows import grammar
from steward.flows.grammar import (
    INTENTS,
    URGENT_CATEGORIES,
    category_name,
    help_text,
    normalise,
    parse,
)
from steward.flows.segments import is_gsm7, segment_count

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "texts.tsv"
OPTIONAL = ("category", "report", "days", "description", "confirm")
NUMERIC = ("category", "report", "days")


def _corpus() -> list[object]:
    if not CORPUS.exists():
        reason = f"corpus not found at {CORPUS}"
        return [pytest.param("", {}, marks=pytest.mark.skip(reason=reason), id="no-corpus")]
    cases: list[object] = []
    for number, line in enumerate(CORPUS.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        text, expected = line.split("\t", 1)
        cases.append(pytest.param(text, json.loads(expected), id=f"line{number}:{text.strip()}"))
    return cases


def _check(text: str, expected: dict[str, object], *, in_step: bool = False) -> None:
    got = parse(text, in_step=in_step).as_json()
    for key, value in expected.items():
        # Some corpus rows quote their numbers ("days": "2"): the row specifies the number, not
        # its JSON type. Only the expected side is converted, so parse must still give an int.
        if key in NUMERIC and isinstance(value, str):
            value = int(value)
        assert got.get(key) == value, (key, got)
    extra = [k for k in OPTIONAL if k in got and k not in expected]
    assert not extra, (extra, got)


@pytest.mark.parametrize(("text", "expected"), _corpus())
def test_corpus(text: str, expected: dict[str, object]) -> None:
    _check(text, expected)


# Our own texts, different from the corpus, so a clone without /work/shared tests the same rules.
OWN: list[tuple[str, dict[str, object]]] = [
    # check-in, in every spelling, with padding, full width, punctuation and run-on text
    ("上岗", {"intent": "check_in"}),
    ("开始巡逻了", {"intent": "check_in"}),
    ("巡查。", {"intent": "check_in"}),
    ("到", {"intent": "check_in"}),
    ("到 西巷", {"intent": "check_in"}),
    ("  签到!!  ", {"intent": "check_in"}),
    ("签到，西门", {"intent": "check_in"}),
    ("ＩＮ", {"intent": "check_in"}),
    ("ｑｄ。", {"intent": "check_in"}),
    ("CheckIn.", {"intent": "check_in"}),
    ("In  now", {"intent": "check_in"}),
    # check-out
    ("下岗", {"intent": "check_out"}),
    ("完成巡查", {"intent": "check_out"}),
    ("收工啦", {"intent": "check_out"}),
    ("２", {"intent": "check_out"}),
    ("DONE", {"intent": "check_out"}),
    ("checkout", {"intent": "check_out"}),
    ("Qt", {"intent": "check_out"}),
    # points and help
    ("分数", {"intent": "points"}),
    ("分", {"intent": "points"}),
    ("PTS", {"intent": "points"}),
    ("p", {"intent": "points"}),
    ("４", {"intent": "points"}),
    ("菜单", {"intent": "help"}),
    ("?", {"intent": "help"}),
    ("？？", {"intent": "help"}),
    ("Menu", {"intent": "help"}),
    ("help!", {"intent": "help"}),
    ("０", {"intent": "help"}),
    # reports: digit, word, run-on, English with case kept, no category, bad category
    (
        "报告 3 小区门口电动车乱停",
        {"intent": "report", "category": 3, "description": "小区门口电动车乱停"},
    ),
    ("反映2 井盖松动", {"intent": "report", "category": 2, "description": "井盖松动"}),
    ("报７ 有人撬车锁", {"intent": "report", "category": 7, "description": "有人撬车锁"}),
    ("报6邻居吵架", {"intent": "report", "category": None, "description": "6邻居吵架"}),
    ("报2路灯", {"intent": "report", "category": 2, "description": "路灯"}),
    ("报 违建 楼顶加盖", {"intent": "report", "category": 5, "description": "楼顶加盖"}),
    ("报井盖丢了", {"intent": "report", "category": 2, "description": "井盖丢了"}),
    ("报 隐患", {"intent": "report", "category": 4}),
    (
        "report 1 Bins Overflowing, Gate B",
        {"intent": "report", "category": 1, "description": "Bins Overflowing, Gate B"},
    ),
    ("Ｒ９ Lost cat", {"intent": "report", "category": 9, "description": "Lost cat"}),
    ("r", {"intent": "report"}),
    ("上报 12号楼楼道灯坏了", {"intent": "report", "description": "12号楼楼道灯坏了"}),
    ("报 0 不知道算哪类", {"intent": "report", "description": "0 不知道算哪类"}),
    ("R lift broken", {"intent": "report", "description": "lift broken"}),
    ("３", {"intent": "report"}),
    # report status and the reporter's check on a fix, with and without a number
    ("查 45", {"intent": "report_status", "report": 45}),
    ("查45", {"intent": "report_status", "report": 45}),
    ("查#45", {"intent": "report_status", "report": 45}),
    ("查", {"intent": "report_status"}),
    ("查询一下", {"intent": "unknown"}),
    ("＃７８", {"intent": "report_status", "report": 78}),
    ("status 9", {"intent": "report_status", "report": 9}),
    ("S 10", {"intent": "report_status", "report": 10}),
    ("好了 88", {"intent": "fix_confirmed", "report": 88}),
    ("是88", {"intent": "fix_confirmed", "report": 88}),
    ("是", {"intent": "fix_confirmed"}),
    ("是的", {"intent": "unknown"}),
    ("YES 5", {"intent": "fix_confirmed", "report": 5}),
    ("没好 66", {"intent": "fix_not_done", "report": 66}),
    ("否66", {"intent": "fix_not_done", "report": 66}),
    ("No 66", {"intent": "fix_not_done", "report": 66}),
    ("否则", {"intent": "unknown"}),
    # leave, back, undo, stop, start
    ("请假两天", {"intent": "leave", "days": 2}),
    ("请假 十天", {"intent": "leave", "days": 10}),
    ("请假十四天", {"intent": "leave", "days": 14}),
    ("请假二十天", {"intent": "leave", "days": 20}),
    ("请假三十天", {"intent": "leave", "days": 30}),
    ("请假7天", {"intent": "leave", "days": 7}),
    ("请假 45", {"intent": "leave", "days": 45}),
    ("请假", {"intent": "leave"}),
    ("请假 几天", {"intent": "leave"}),
    # A lead puts someone on leave who cannot text.
    ("请假 张桂兰 5", {"intent": "leave", "days": 5, "name": "张桂兰"}),
    ("请假张桂兰五天", {"intent": "leave", "days": 5, "name": "张桂兰"}),
    ("leave Mary Chen 4 days", {"intent": "leave", "days": 4, "name": "Mary Chen"}),
    ("leave 14", {"intent": "leave", "days": 14}),
    ("back", {"intent": "back"}),
    ("销假了", {"intent": "back"}),
    ("undo", {"intent": "undo"}),
    ("stop", {"intent": "stop"}),
    ("订阅", {"intent": "start"}),
    ("Start", {"intent": "start"}),
    # typo tolerance: one slip in a 4+ letter keyword asks first; short words and two slips do not
    ("CHEKCIN", {"intent": "check_in", "confirm": True}),
    ("chekout", {"intent": "check_out", "confirm": True}),
    ("HLEP", {"intent": "help", "confirm": True}),
    ("Pionts", {"intent": "points", "confirm": True}),
    (
        "REPOTR 4 gas smell",
        {"intent": "report", "category": 4, "description": "gas smell", "confirm": True},
    ),
    ("levae 2", {"intent": "leave", "days": 2, "confirm": True}),
    ("OTU", {"intent": "unknown"}),
    ("IM", {"intent": "unknown"}),
    ("BAK", {"intent": "unknown"}),
    ("CHKIN", {"intent": "unknown"}),
    ("hepl me", {"intent": "help", "confirm": True}),
    ("hello", {"intent": "unknown"}),
    # the intents whose flows come later
    ("报名。", {"intent": "apply"}),
    ("apply", {"intent": "apply"}),
    ("同意！", {"intent": "agree"}),
    ("Agree", {"intent": "agree"}),
    ("退出。", {"intent": "quit"}),
    ("QUIT", {"intent": "quit"}),
    ("退订了", {"intent": "stop"}),
    ("报名 东巷", {"intent": "apply"}),
    ("aplpy", {"intent": "apply", "confirm": True}),
    # a space inside a Chinese keyword; spaces elsewhere still separate
    ("积 分", {"intent": "points"}),
    ("签 退。", {"intent": "check_out"}),
    ("签 到 西巷", {"intent": "check_in"}),
    ("退 出", {"intent": "quit"}),
    ("报 名", {"intent": "apply"}),
    ("好 了 88", {"intent": "fix_confirmed", "report": 88}),
    ("请 假 3", {"intent": "leave", "days": 3}),
    ("上 报 路灯 灯不亮", {"intent": "report", "category": 2, "description": "灯不亮"}),
    ("报 告诉你们一件事", {"intent": "report", "description": "告诉你们一件事"}),
    ("报 1 5号楼 门口", {"intent": "report", "category": 1, "description": "5号楼 门口"}),
    ("签 到了没", {"intent": "unknown"}),
    # two-word English keywords; one slip only in the long word, as for one-word keywords
    ("check in", {"intent": "check_in"}),
    ("Sign In.", {"intent": "check_in"}),
    ("CHECK  OUT", {"intent": "check_out"}),
    ("sign out now", {"intent": "check_out"}),
    ("chek in", {"intent": "check_in", "confirm": True}),
    ("sigm out", {"intent": "check_out", "confirm": True}),
    ("check on her", {"intent": "unknown"}),
    ("check it out", {"intent": "unknown"}),
    ("sign up", {"intent": "unknown"}),
    ("checkin out", {"intent": "check_in"}),
    ("check inside", {"intent": "unknown"}),
    # polite and possessive lead-ins, skipped only when a keyword follows at once
    ("我要签到", {"intent": "check_in"}),
    ("请帮我签退", {"intent": "check_out"}),
    ("麻烦帮我签退。", {"intent": "check_out"}),
    ("麻烦你 帮我 签到", {"intent": "check_in"}),
    ("我的分数", {"intent": "points"}),
    ("我的积分", {"intent": "points"}),
    ("我的分", {"intent": "points"}),
    ("我想请假五天", {"intent": "leave", "days": 5}),
    ("我要请假", {"intent": "leave"}),
    ("请请假 2", {"intent": "leave", "days": 2}),
    ("请帮我查二十", {"intent": "report_status", "report": 20}),
    ("我要报 1 楼道堆物", {"intent": "report", "category": 1, "description": "楼道堆物"}),
    ("我要上报 路灯 不亮", {"intent": "report", "category": 2, "description": "不亮"}),
    ("我要报名", {"intent": "apply"}),
    ("我想退出", {"intent": "quit"}),
    ("我要退订", {"intent": "stop"}),
    ("please check in", {"intent": "check_in"}),
    ("Please sign out", {"intent": "check_out"}),
    ("pls stop", {"intent": "stop"}),
    ("please chekin", {"intent": "check_in", "confirm": True}),
    ("please", {"intent": "unknown"}),
    ("我要", {"intent": "unknown"}),
    ("请问签到怎么弄", {"intent": "unknown"}),
    ("请到我家坐坐", {"intent": "unknown"}),
    ("我想到了", {"intent": "unknown"}),
    ("我要是早知道就好了", {"intent": "unknown"}),
    ("我的签到记录", {"intent": "unknown"}),
    ("我想开始学跳舞", {"intent": "unknown"}),
    ("pleased to meet you", {"intent": "unknown"}),
    # Chinese numerals where a number is expected, and only there
    ("请假五天", {"intent": "leave", "days": 5}),
    ("请假十二天", {"intent": "leave", "days": 12}),
    ("查二十", {"intent": "report_status", "report": 20}),
    ("查 七", {"intent": "report_status", "report": 7}),
    ("查十五号", {"intent": "report_status", "report": 15}),
    ("是二十一", {"intent": "fix_confirmed", "report": 21}),
    ("否九", {"intent": "fix_not_done", "report": 9}),
    ("否 两", {"intent": "fix_not_done", "report": 2}),
    ("好了十一", {"intent": "fix_confirmed", "report": 11}),
    ("受理十二", {"intent": "ack", "report": 12}),
    ("办结 十二 已清理", {"intent": "resolve", "report": 12, "description": "已清理"}),
    ("查一下", {"intent": "unknown"}),
    ("是一个问题", {"intent": "unknown"}),
    ("否三号楼不归我管", {"intent": "unknown"}),
    ("查零", {"intent": "unknown"}),
    ("到三楼", {"intent": "unknown"}),
    # a keyword inside a sentence, or a one-character keyword inside a word
    ("他今天签到了没有", {"intent": "unknown"}),
    ("你签到了吗", {"intent": "unknown"}),
    ("老王说要请假", {"intent": "unknown"}),
    ("报纸没送来", {"intent": "unknown"}),
    ("是不是要签到", {"intent": "unknown"}),
    ("分开巡逻", {"intent": "unknown"}),
    ("今天天气不错", {"intent": "unknown"}),
    # anything else
    ("", {"intent": "unknown"}),
    ("   。", {"intent": "unknown"}),
    ("5", {"intent": "unknown"}),
    ("12", {"intent": "unknown"}),
    ("到底谁管", {"intent": "unknown"}),
    ("明天下雨吗", {"intent": "unknown"}),
    ("into the alley", {"intent": "unknown"}),
]

LEADS: list[tuple[str, dict[str, object]]] = [
    ("受理 31", {"intent": "ack", "report": 31}),
    ("ack #31", {"intent": "ack", "report": 31}),
    ("办结 31 已清运，请核实", {"intent": "resolve", "report": 31, "description": "已清运,请核实"}),
    ("Fixed 31 Lamp Replaced", {"intent": "resolve", "report": 31, "description": "Lamp Replaced"}),
    ("办结 31", {"intent": "resolve", "report": 31}),
    ("驳回 32 重复上报", {"intent": "reject", "report": 32, "description": "重复上报"}),
    ("REJECT 32 Not our area", {"intent": "reject", "report": 32, "description": "Not our area"}),
    ("今日", {"intent": "today"}),
    ("Today", {"intent": "today"}),
    ("今天天气", {"intent": "unknown"}),
]


def _ids(cases: list[tuple[str, dict[str, object]]]) -> list[str]:
    return [text.strip() or "<blank>" for text, _ in cases]


@pytest.mark.parametrize(("text", "expected"), OWN + LEADS, ids=_ids(OWN + LEADS))
def test_own_cases(text: str, expected: dict[str, object]) -> None:
    _check(text, expected)


@pytest.mark.parametrize(
    ("text", "name"),
    [("确认 Wang Fang", "Wang Fang"), ("CONFIRM 李秀英", "李秀英"), ("确认王芳", "王芳")],
)
def test_confirm_session_keeps_the_name_as_written(text: str, name: str) -> None:
    parsed = parse(text)
    assert (parsed.intent, parsed.name, parsed.description) == ("confirm_session", name, None)
    assert parse("确认").name is None


STEP: list[tuple[str, dict[str, object]]] = [
    ("1", {"intent": "step_answer", "description": "1"}),
    ("０", {"intent": "step_answer", "description": "0"}),
    ("垃圾", {"intent": "step_answer", "description": "垃圾"}),
    ("签到", {"intent": "step_answer", "description": "签到"}),
    ("帮助老人过马路", {"intent": "step_answer", "description": "帮助老人过马路"}),
    ("STPO", {"intent": "step_answer", "description": "stpo"}),
    ("stop", {"intent": "stop"}),
    ("退订。", {"intent": "stop"}),
    ("START", {"intent": "start"}),
    ("订阅", {"intent": "start"}),
    ("帮助", {"intent": "help"}),
    ("？", {"intent": "help"}),
    ("HELP", {"intent": "help"}),
    ("", {"intent": "unknown"}),
]


@pytest.mark.parametrize(("text", "expected"), STEP, ids=_ids(STEP))
def test_inside_a_step(text: str, expected: dict[str, object]) -> None:
    _check(text, expected, in_step=True)


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("CHEKIN", "IN"),
        ("checkuot", "OUT"),
        ("REPROT", "REPORT"),
        ("poitns", "POINTS"),
        ("签到", "签到"),
    ],
)
def test_keyword_to_show_comes_from_the_table(text: str, keyword: str) -> None:
    assert parse(text).keyword == keyword


def test_exact_matches_never_ask_first() -> None:
    for intent in grammar.TABLE:
        for word in intent.zh + intent.en:
            assert parse(word).confirm is False, word
            assert parse(word).intent == intent.name, word


def test_every_category_word_selects_its_category() -> None:
    for category in grammar.CATEGORIES:
        for word in category.words:
            parsed = parse(f"报 {word} 东门口")
            assert (parsed.category, parsed.description) == (category.code, "东门口"), word
            assert parse(f"报{word}").category == category.code, word


def test_normalise() -> None:
    assert normalise("　ＲＥＰＯＲＴ　１，楼道（3单元）堆物！") == "report 1 楼道 3单元 堆物"
    assert normalise("签到。。。") == "签到"
    assert normalise("  IN  \t now. ") == "in now"
    assert normalise("？") == "?"
    assert normalise("what?") == "what"


def test_intents_list_every_outcome() -> None:
    assert set(INTENTS) >= {i.name for i in grammar.TABLE} | {"unknown", "step_answer"}
    assert len(INTENTS) == len(set(INTENTS))


def test_categories() -> None:
    assert category_name(1, "zh") == "环境卫生"
    assert category_name(4, "en") == "safety hazard"
    assert category_name(7, "zh") == "治安"
    assert frozenset({4, 7}) == URGENT_CATEGORIES
    with pytest.raises(ValueError):
        category_name(10, "en")


@pytest.mark.parametrize("language", ["zh", "en"])
def test_help_text_fits_one_segment_and_lists_the_menu(language: str) -> None:
    text = help_text(language)
    assert segment_count(text) == 1
    assert is_gsm7(text) == (language == "en")
    for intent in grammar.TABLE:
        if intent.digit is not None:
            shown = intent.en[0] if language == "en" else intent.zh[0]
            assert f"{intent.digit}{' ' if language == 'en' else ''}{shown}" in text
            assert parse(intent.digit).intent == intent.name
            assert parse(shown).intent == intent.name
