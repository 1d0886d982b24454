"""Read what a volunteer texts: the keyword table (data) and the parser that walks it.

Everything a sender can type lives in `TABLE`, `CATEGORIES` and `LEAD_INS`; the parser, the help
menu and the "Did you mean IN?" keyword are all derived from them, so adding a keyword is one edit.
See SPEC §3 for the rules this implements.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum


class Args(Enum):
    """What may follow an intent's keyword."""

    NONE = "none"
    REPORT = "report"  # optional category (digit or word), then the description
    NUMBER = "number"  # a report number, with or without '#'
    NUMBER_NOTE = "number_note"  # a report number, then a note or reason
    DAYS = "days"  # a number of days, in digits or Chinese numerals
    NAME = "name"  # a volunteer's name, as written


@dataclass(frozen=True)
class Intent:
    """One row of the grammar: the first keyword of each language is the one shown to people."""

    name: str
    zh: tuple[str, ...]
    en: tuple[str, ...]
    digit: str | None = None
    args: Args = Args.NONE


TABLE: tuple[Intent, ...] = (
    Intent(
        "check_in",
        ("签到", "到", "上岗", "开始", "巡查"),
        ("IN", "CHECKIN", "CHECK IN", "SIGN IN", "QD"),
        "1",
    ),
    Intent(
        "check_out",
        ("签退", "结束", "下岗", "完成", "收工"),
        ("OUT", "CHECKOUT", "CHECK OUT", "SIGN OUT", "DONE", "QT"),
        "2",
    ),
    Intent("report", ("上报", "报", "报告", "反映"), ("REPORT", "R"), "3", Args.REPORT),
    Intent("points", ("积分", "分数", "分"), ("POINTS", "P", "PTS", "JF"), "4"),
    Intent("help", ("帮助", "菜单", "？"), ("HELP", "MENU", "?"), "0"),
    Intent("report_status", ("查",), ("STATUS", "S", "#"), args=Args.NUMBER),
    Intent("fix_confirmed", ("是", "好了"), ("YES", "Y"), args=Args.NUMBER),
    Intent("fix_not_done", ("否", "没好"), ("NO",), args=Args.NUMBER),
    Intent("leave", ("请假",), ("LEAVE",), args=Args.DAYS),
    Intent("back", ("销假",), ("BACK",)),
    Intent("undo", ("撤销",), ("UNDO",)),
    Intent("stop", ("退订",), ("STOP",)),
    Intent("start", ("订阅",), ("START",)),
    # Their flows come later; until then the inbox answers that they are not available yet.
    Intent("apply", ("报名",), ("APPLY",)),
    Intent("agree", ("同意",), ("AGREE",)),
    Intent("quit", ("退出",), ("QUIT",)),
    # Leads of a community may work by SMS too (SPEC "Leads who text").
    Intent("ack", ("受理",), ("ACK",), args=Args.NUMBER),
    Intent("resolve", ("办结",), ("FIXED",), args=Args.NUMBER_NOTE),
    Intent("reject", ("驳回",), ("REJECT",), args=Args.NUMBER_NOTE),
    Intent("today", ("今日",), ("TODAY",)),
    Intent("confirm_session", ("确认",), ("CONFIRM",), args=Args.NAME),
)

INTENTS: tuple[str, ...] = (*(i.name for i in TABLE), "step_answer", "unknown")

# Polite and possessive words people put before a keyword (我要签到, 我的积分, 请帮我签退,
# please check in). They are skipped only when a keyword follows at once, and may follow one
# another (麻烦 + 帮我). A keyword after them must stand apart, as a one-character keyword does.
LEAD_INS: tuple[str, ...] = (
    *("请", "请你", "请您", "麻烦", "麻烦你", "麻烦您", "帮我", "我要", "我想", "我的"),
    *("please", "pls"),
)


@dataclass(frozen=True)
class Category:
    """A report category: its fixed code, names, and the words that select it."""

    code: int
    zh: str
    en: str
    words: tuple[str, ...]
    urgent: bool = False


CATEGORIES: tuple[Category, ...] = (
    Category(1, "环境卫生", "sanitation", ("卫生", "环境", "垃圾")),
    Category(2, "设施损坏", "damaged facility", ("设施", "路灯", "井盖")),
    Category(3, "秩序管理", "public order", ("秩序", "乱停", "乱放", "占道")),
    Category(4, "安全隐患", "safety hazard", ("安全", "隐患", "消防"), urgent=True),
    Category(5, "私搭乱建", "illegal construction", ("违建", "乱建")),
    Category(6, "矛盾纠纷", "dispute", ("纠纷", "矛盾")),
    Category(7, "治安", "public security", ("治安", "可疑"), urgent=True),
    Category(8, "信息变化", "resident info change", ("信息",)),
    Category(9, "其他", "other", ("其他",)),
)

URGENT_CATEGORIES: frozenset[int] = frozenset(c.code for c in CATEGORIES if c.urgent)


@dataclass(frozen=True)
class Parsed:
    """What a text asks for."""

    intent: str
    category: int | None = None
    report: int | None = None
    days: int | None = None
    description: str | None = None
    name: str | None = None
    confirm: bool = False
    keyword: str | None = None

    def as_json(self) -> dict[str, object]:
        """Return the fields that apply, as `steward parse` prints them."""
        out: dict[str, object] = {"intent": self.intent}
        for field in ("category", "report", "days", "description", "name"):
            value = getattr(self, field)
            if value is not None:
                out[field] = value
        if self.confirm:
            out["confirm"] = True
        return out


UNKNOWN = Parsed("unknown")

# --- normalising -------------------------------------------------------------------------

# Chinese punctuation that survives NFKC, plus the ASCII forms NFKC makes of the full-width
# ones (，！？：；（）＂): after NFKC the two can no longer be told apart.
_PUNCTUATION = '。、“”‘’【】《》「」『』〈〉〔〕—,!?:;()"'
_TO_SPACE = str.maketrans(dict.fromkeys(_PUNCTUATION, " "))
_SEPARATORS = " " + _PUNCTUATION
_TRAILING = " 。!."
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Return the text in the form keywords are matched against."""
    text = unicodedata.normalize("NFKC", text).strip()
    if text and set(text) == {"?"}:
        return "?"  # a lone question mark asks for help; anywhere else it is punctuation
    return _trim(text.translate(_TO_SPACE).casefold())


def display_text(text: str) -> str:
    """Return the sender's text tidied but with case and inner punctuation kept (for storing)."""
    return _trim(unicodedata.normalize("NFKC", text))


def _trim(text: str) -> str:
    return _SPACES.sub(" ", text).strip().rstrip(_TRAILING)


# --- the keyword index, built once from the table ------------------------------------------


@dataclass(frozen=True)
class _Keyword:
    word: str  # normalised, as matched
    intent: Intent
    shown: str  # the intent's canonical keyword in the same language
    spaced: re.Pattern[str]  # the word, allowing a space between any two of its characters

    @property
    def latin(self) -> bool:
        return self.word.isascii() and self.word.replace(" ", "").isalpha()


def _index() -> tuple[_Keyword, ...]:
    rows: list[_Keyword] = []
    for intent in TABLE:
        for words in (intent.zh, intent.en):
            rows += [_keyword(normalise(w), intent, words[0]) for w in words]
    return tuple(rows)


def _keyword(word: str, intent: Intent, shown: str) -> _Keyword:
    # 签 到 reads as 签到. Only the keyword's own characters are joined this way: spaces anywhere
    # else in the text (报 1 5号楼, 报 垃圾 门口) still separate what the sender separated.
    spaced = re.compile(" ?".join(map(re.escape, word)))
    return _Keyword(word, intent, shown, spaced)


_KEYWORDS = _index()
# Keywords by first character: a text can only start with those that start as it does.
_STARTING_WITH = {
    k.word[0]: tuple(j for j in _KEYWORDS if j.word[0] == k.word[0]) for k in _KEYWORDS
}
# Longest first, so that 请你签到 skips 请你 rather than stopping at 请 before 你签到.
_LEAD_INS = sorted((normalise(w) for w in LEAD_INS), key=len, reverse=True)
_BY_DIGIT = {i.digit: i for i in TABLE if i.digit is not None}
_HELP_WORDS = frozenset(k.word for k in _KEYWORDS if k.intent.name == "help")
_CATEGORY_WORDS = sorted(
    ((w, c.code) for c in CATEGORIES for w in c.words), key=lambda p: -len(p[0])
)
_LATIN_WORDS = re.compile(r"[a-z]+(?: [a-z]+)*(?=[\s0-9]|$)")
_DIGITS = re.compile(r"[0-9]+")
_NUMBER = re.compile(r"(#?) ?([0-9]+)")
_CN_NUMBER = re.compile(r"[零一二两三四五六七八九十]+")
_CN_DIGITS = {c: n for n, c in enumerate("零一二三四五六七八九")} | {"两": 2}
# Chinese numerals standing on their own, maybe with their unit: 十二, 十二号, 三天 (not 三号楼).
_CN_COUNT = re.compile(r"([零一二两三四五六七八九十]+)[天日号]?(?= |$)")
_COUNTED = frozenset({Args.NUMBER, Args.NUMBER_NOTE, Args.DAYS})

# --- parsing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Match:
    keyword: _Keyword
    used: tuple[str, ...]  # what was read, as normalised: any lead-ins, then the keyword as written
    rest: str  # the normalised text after them
    confirm: bool = False


def parse(text: str, *, in_step: bool = False) -> Parsed:
    """Read one text; `in_step` means a guided step is waiting for an answer."""
    norm = normalise(text)
    if not norm:
        return UNKNOWN
    found = _read(norm, display_text(text))
    return as_step_answer(found, text) if in_step else found


def as_step_answer(found: Parsed, text: str) -> Parsed:
    """How a text already parsed reads while a guided step waits: an answer to the step,
    unless it is one of the words that always escape (STOP, START, a bare HELP)."""
    norm = normalise(text)
    if not norm or _escapes_step(found, norm):
        return found
    return Parsed("step_answer", description=norm)


def _escapes_step(found: Parsed, norm: str) -> bool:
    # STOP/START must never be trapped in a guided step (SPEC §3 Replies). Help only when it is
    # the whole text, since a described problem may well begin with 帮助….
    if found.confirm:
        return False
    return found.intent in ("stop", "start") or (found.intent == "help" and norm in _HELP_WORDS)


def _read(norm: str, shown: str) -> Parsed:
    if _DIGITS.fullmatch(norm):
        menu = _BY_DIGIT.get(norm)
        return Parsed(menu.name) if menu else UNKNOWN
    match = _find(norm)
    if match is None:
        return UNKNOWN
    keyword = match.keyword
    base = Parsed(keyword.intent.name, confirm=match.confirm, keyword=keyword.shown)
    return _ARGUMENTS[keyword.intent.args](base, match.rest, list(match.used), shown)


def _find(norm: str) -> _Match | None:
    """Find the keyword the text starts with, after any lead-ins (我要, 请帮我, please)."""
    lead_ins: list[str] = []
    while True:  # a loop, not recursion: a text may be thousands of 请 long
        found = _exact(norm, after_lead_in=bool(lead_ins)) or _typo(norm)
        if found is not None:
            return replace(found, used=(*lead_ins, *found.used))
        lead = _lead_in(norm)
        if lead is None:
            return None
        lead_ins.append(lead)
        norm = norm[len(lead) :].lstrip()


def _lead_in(norm: str) -> str | None:
    # A Latin lead-in is a whole word (please check in); a Chinese one runs into the keyword.
    return next(
        (w for w in _LEAD_INS if norm.startswith(w) and (not w.isascii() or _word_ends(norm, w))),
        None,
    )


def _exact(norm: str, *, after_lead_in: bool) -> _Match | None:
    """Find the longest keyword the text starts with."""
    candidates = _STARTING_WITH.get(norm[:1], ())
    hits = [m for k in candidates if (m := _match_at(k, norm, after_lead_in)) is not None]
    return max(hits, key=lambda m: len(m.keyword.word), default=None)


def _match_at(keyword: _Keyword, norm: str, after_lead_in: bool) -> _Match | None:
    if keyword.latin:
        if not norm.startswith(keyword.word) or not _word_ends(norm, keyword.word):
            return None  # Latin keywords are whole words: IN, but not the start of INTO
        return _Match(keyword, (keyword.word,), norm[len(keyword.word) :].lstrip())
    found = keyword.spaced.match(norm)
    if found is None:
        return None
    head, rest = found.group(), norm[found.end() :]
    # Chinese keywords may run straight into the text (签到东巷), except where the reading is
    # doubtful; then they count only when they stand apart: a one-character keyword (到底 is not
    # a check-in), one with a space inside (报 告诉你 is 报 and a text), one after a lead-in
    # (我的签到记录 is not a check-in).
    runs_on = len(head) > 1 and " " not in head and not after_lead_in
    if not runs_on and not _stands_apart(keyword.intent, rest):
        return None
    return _Match(keyword, (head,), rest.lstrip())


def _word_ends(norm: str, word: str) -> bool:
    """Tell whether the Latin word the text starts with ends there (IN 2, not INTO)."""
    after = norm[len(word) : len(word) + 1]
    return not after or after in " 0123456789"


def _stands_apart(intent: Intent, rest: str) -> bool:
    """Tell whether what follows a keyword lets it count: a space, a number, a category word, the
    end, or Chinese numerals for a keyword that expects a number."""
    if not rest or rest[0] in " #0123456789" or _category_at(rest) is not None:
        return True
    # Chinese numerals count only where a number is expected: 查十二 is report 12, 到三楼 is not
    # a check-in; and only standing alone: 查一下 is "have a look".
    return intent.args in _COUNTED and _chinese_count(rest) is not None


def _typo(norm: str) -> _Match | None:
    """Tolerate one slip in a Latin keyword (a word of four letters or more), if one intent fits."""
    latin = _LATIN_WORDS.match(norm)
    if latin is None:
        return None
    words = latin.group().split(" ")
    hits = [k for k in _KEYWORDS if k.latin and _one_slip(words, k.word.split(" "))]
    if len({k.intent.name for k in hits}) != 1:
        return None
    head = " ".join(words[: hits[0].word.count(" ") + 1])
    return _Match(hits[0], (head,), norm[len(head) :].lstrip(), confirm=True)


def _one_slip(words: list[str], keyword: list[str]) -> bool:
    """Tell whether the text's first words are the keyword's with one slip in one long word."""
    # Per word, so the SPEC's four-letter rule carries over to two-word keywords: CHEK IN is a
    # slip for CHECK IN, but CHECK ON or CHECK IT is not, since IN is too short to guess at.
    if len(words) < len(keyword):
        return False
    slips = [(w, k) for w, k in zip(words, keyword, strict=False) if w != k]
    if len(slips) != 1:
        return False
    word, want = slips[0]
    return min(len(word), len(want)) >= 4 and _one_edit_apart(word, want)


def _one_edit_apart(a: str, b: str) -> bool:
    """Tell whether a and b differ by exactly one insertion, deletion, substitution or swap."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = next((n for n, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), len(a))
    if len(a) < len(b):
        return a[i:] == b[i + 1 :]
    substituted = a[i + 1 :] == b[i + 1 :]
    swapped = a[i + 1 : i + 2] + a[i : i + 1] == b[i : i + 2] and a[i + 2 :] == b[i + 2 :]
    return substituted or swapped


# --- arguments -----------------------------------------------------------------------------


def _no_args(base: Parsed, rest: str, used: list[str], shown: str) -> Parsed:
    return base


def _report_args(base: Parsed, rest: str, used: list[str], shown: str) -> Parsed:
    category, consumed = _category_prefix(rest)
    return replace(base, category=category, description=_tail(shown, [*used, *consumed]))


def _number_args(base: Parsed, rest: str, used: list[str], shown: str) -> Parsed:
    number = _report_number(rest)
    return replace(base, report=number[0] if number else None)


def _number_note_args(base: Parsed, rest: str, used: list[str], shown: str) -> Parsed:
    number = _report_number(rest)
    if number is None:
        return replace(base, description=_tail(shown, used))
    report, consumed = number
    return replace(base, report=report, description=_tail(shown, used + consumed))


def _report_number(rest: str) -> tuple[int, list[str]] | None:
    """Read a report number and the words it took: 12, #12, # 12, or in Chinese numerals (十二)."""
    digits = _NUMBER.match(rest)
    if digits:
        return int(digits.group(2)), [g for g in digits.groups() if g]
    chinese = _chinese_count(rest)
    return (chinese[0], [chinese[1]]) if chinese else None


def _days_args(base: Parsed, rest: str, used: list[str], shown: str) -> Parsed:
    digits, chinese = _DIGITS.match(rest), _CN_NUMBER.match(rest)
    if digits:
        return replace(base, days=int(digits.group()))
    if chinese:
        return replace(base, days=_chinese_number(chinese.group()))
    # A lead may put someone else on leave: 请假 王秀英 3 / 请假王秀英3天 / LEAVE Li Wei 2.
    named = _NAME_DAYS.match(_tail(shown, used) or "")
    if named is None:
        return replace(base, days=None)
    count = named.group("days")
    days = int(count) if count.isdigit() else _chinese_number(count)
    return replace(base, name=named.group("name").strip(), days=days)


_NAME_DAYS = re.compile(
    r"^(?P<name>.*?\D)\s*(?P<days>\d+|[一二两三四五六七八九十]+)\s*(?:天|日|days?|d)?$",
    re.IGNORECASE,
)


def _name_args(base: Parsed, rest: str, used: list[str], shown: str) -> Parsed:
    return replace(base, name=_tail(shown, used))


_ARGUMENTS = {
    Args.NONE: _no_args,
    Args.REPORT: _report_args,
    Args.NUMBER: _number_args,
    Args.NUMBER_NOTE: _number_note_args,
    Args.DAYS: _days_args,
    Args.NAME: _name_args,
}


def _category_prefix(rest: str) -> tuple[int | None, list[str]]:
    """Return the category the report text starts with, and the words that chose it."""
    number = _DIGITS.match(rest)
    if number:
        code, after = int(number.group()), rest[number.end() :]
        # "报 5号楼…" names a building, not category 5: a category digit stands alone.
        if 1 <= code <= 9 and (not after or after[0] == " " or _category_at(after)):
            return code, [number.group()]
        return None, []  # keep the number: it is part of what the sender wrote
    found = _category_at(rest)
    if found is None:
        return None, []
    word, code = found
    # A category word on its own is a label and is dropped; run into text it is the text.
    standalone = len(rest) == len(word) or rest[len(word)] == " "
    return code, [word] if standalone else []


def _category_at(text: str) -> tuple[str, int] | None:
    return next(((w, c) for w, c in _CATEGORY_WORDS if text.startswith(w)), None)


def _tail(shown: str, consumed: Sequence[str]) -> str | None:
    """Return what follows the consumed words in the sender's own text (case kept)."""
    # Case folding can change a text's length (ß → ss); then fall back to the folded text.
    rest = _skip(shown, consumed)
    if rest is None:
        rest = _skip(normalise(shown), consumed) or ""
    return rest or None


def _skip(text: str, words: Sequence[str]) -> str | None:
    """Return text after the given words (each maybe preceded by separators), or None."""
    at = 0
    for word in words:
        while at < len(text) and text[at] in _SEPARATORS:
            at += 1
        if text[at : at + len(word)].casefold() != word:
            return None
        at += len(word)
    return text[at:].lstrip(_SEPARATORS).rstrip()


def _chinese_count(text: str) -> tuple[int, str] | None:
    """Read a number in Chinese numerals standing at the start of text: (12, "十二号")."""
    found = _CN_COUNT.match(text)
    number = _chinese_number(found.group(1)) if found else None
    return (number, found.group()) if found and number else None


def _chinese_number(text: str) -> int | None:
    """Read 一 … 九十九; anything else (三三, 十十) is not a number of days."""
    tens, ten, units = text.partition("十")
    if not ten:
        return _CN_DIGITS.get(text)
    high = _CN_DIGITS.get(tens, None) if tens else 1
    low = _CN_DIGITS.get(units, None) if units else 0
    return None if high is None or low is None else high * 10 + low


# --- text generated from the table ---------------------------------------------------------


def _english(language: str) -> bool:
    # Volunteers' language is stored as "zh" or "en"; anything else gets Chinese, the default.
    return language.lower().startswith("en")


def help_text(language: str) -> str:
    """Return the short menu (one SMS segment) in the volunteer's language."""
    menu = sorted(_BY_DIGIT.values(), key=lambda i: (i.digit == "0", i.digit))
    if _english(language):
        return "Reply " + ", ".join(f"{i.digit} {i.en[0]}" for i in menu)
    return "回复: " + " ".join(f"{i.digit}{i.zh[0]}" for i in menu)


def category_name(code: int, language: str) -> str:
    """Return a category's name in the volunteer's language."""
    category = next((c for c in CATEGORIES if c.code == code), None)
    if category is None:
        raise ValueError(f"no report category {code}")
    return category.en if _english(language) else category.zh
