"""The demo street (`steward demo`): a roster and two weeks of history, made the way real use is.

Nothing is written by hand. The roster goes through the import (`parse_roster`, then
`apply_roster`, as `steward roster import` does); every text goes through the inbound writer
and the processor at the moment it was sent (a stored message's `received_at` is its "now");
every scheduled job runs through `run_job` as of its time; every message leaves through the
outbox and the dispatcher, to the simulator's sender. A manual clock stands at each moment in
turn, so sent times, quiet hours and "what is due" read as they would have on the day.

The script is a pure function of the demo's start (`build_script`): a fixed seed decides who
was late, short or absent, so two runs from the same start make the same street.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from steward.clock import local_date, reading, utc
from steward.flows.roster import RosterPlan, decode_roster, parse_roster
from steward.gateway.messages import GroupPost, InboundMessage
from steward.gateway.outbox import Dispatcher
from steward.gateway.simulator import SimulatorSender, TelegramGroupSender
from steward.settings import Settings
from steward.shells import groups as group_shell
from steward.shells.inbound import Processor
from steward.shells.jobs import run_job
from steward.storage.inbound import InboundWriter
from steward.storage.roster_store import ImportSummary, apply_roster
from steward.storage.unit import UnitOfWork

STREET = "新开河街"
HISTORY_DAYS = 14
SEED = 20261123  # who was late, short or absent: the same street on every run
DEMO_MORNING = time(7, 45)  # the demo opens before the first patrols set out
REPLY_AFTER = timedelta(seconds=2)  # how long after a text its reply is sent
EVERY_DAY = "daily"
WEEKDAYS = "mon-fri"


@dataclass(frozen=True)
class Person:
    key: str
    name: str
    phone: str  # E.164; the roster file writes it the ways people do
    community: str
    role: str = "steward"
    language: str = "zh"
    pair: str = ""
    zone: str = ""
    start: str = ""
    days: str = ""
    birth: str = ""


ZHENHUA, ZHICHENG, JINZHONG = "振华里社区", "志成道社区", "金钟河社区"

PEOPLE: tuple[Person, ...] = (
    Person("qian", "钱丽华", "+8613922010001", ZHENHUA, role="office", birth="1975-04"),
    Person("zhao", "赵建国", "+8613922010101", ZHENHUA, role="lead", birth="1962-08"),
    Person("chen", "Chen Jing", "+8613922010201", ZHICHENG, role="lead", language="en"),
    Person("sun", "孙立新", "+8613922010301", JINZHONG, role="lead", birth="1966-01"),
    # 振华里: A1 daily at 8:00, A2 daily at 8:00.
    Person(
        "wang", "王秀英", "+8613922011101", ZHENHUA, pair="A1", zone="振华里东巷", birth="1953-03"
    ),
    Person(
        "liu", "刘桂兰", "+8613922011102", ZHENHUA, pair="A1", zone="振华里东巷", birth="1956-11"
    ),
    Person(
        "zhang", "张建民", "+8613922011201", ZHENHUA, pair="A2", zone="振华里西巷", birth="1958-06"
    ),
    Person("li", "Li Wei", "+8613922011202", ZHENHUA, language="en", pair="A2", zone="振华里西巷"),
    # 志成道: B1 daily at 7:30, B2 daily at 8:00.
    Person(
        "zhou", "周玉梅", "+8613922012101", ZHICHENG, pair="B1", zone="志成道北段", start="07:30"
    ),
    Person("wu", "吴国庆", "+8613922012102", ZHICHENG, pair="B1", zone="志成道北段", start="07:30"),
    Person(
        "david",
        "David Zhou",
        "+8613922012201",
        ZHICHENG,
        language="en",
        pair="B2",
        zone="志成道南段",
    ),
    Person("zheng", "郑小燕", "+8613922012202", ZHICHENG, pair="B2", zone="志成道南段"),
    # 金钟河: C1 on weekdays at 8:30; C2 has one member, a vacancy to fill.
    Person(
        "ma",
        "马春花",
        "+8613922013101",
        JINZHONG,
        pair="C1",
        zone="金钟河大街",
        start="08:30",
        days=WEEKDAYS,
    ),
    Person(
        "huang",
        "黄志强",
        "+8613922013102",
        JINZHONG,
        pair="C1",
        zone="金钟河大街",
        start="08:30",
        days=WEEKDAYS,
    ),
    Person("he", "何淑珍", "+8613922013201", JINZHONG, pair="C2", zone="河沿胡同"),
)
BY_KEY = {p.key: p for p in PEOPLE}
# The leads' and the office's Telegram accounts, and their groups (simulated on the /sim page).
TELEGRAM_USER = {p.key: 7001 + n for n, p in enumerate(PEOPLE) if p.role in ("lead", "office")}
LEAD_GROUPS = {ZHENHUA: ("zhao", -1001), ZHICHENG: ("chen", -1002), JINZHONG: ("sun", -1003)}
OFFICE_GROUP = ("qian", -1000)
RESIDENT = "+8613712345678"  # not on the roster: gets the polite "not registered" once

CHECK_IN = {"zh": ("签到", "签到", "签到", "1", "到", "上岗"), "en": ("IN", "in", "IN", "1")}
CHECK_OUT = {"zh": ("签退", "签退", "2", "收工", "结束"), "en": ("OUT", "out", "done", "2")}


# --- the roster --------------------------------------------------------------------------------

HEADER = (
    *("街道", "社区", "片区", "组", "姓名", "手机", "角色", "语言", "巡查时间", "巡查日"),
    *("出生年月", "志愿者编号", "加入日期"),
)


def _written(phone: str, n: int) -> str:
    """A number the way a spreadsheet holds it: with spaces, dashes or the country code."""
    national = phone[3:]
    forms = (
        national,
        f"{national[:3]} {national[3:7]} {national[7:]}",
        f"+86 {national[:3]}-{national[3:7]}-{national[7:]}",
    )
    return forms[n % len(forms)]


def roster_csv(joined: date) -> str:
    """The demo street's roster file, as a street office would keep it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    roles = {"steward": "管家", "lead": "片长", "office": "街道"}
    for n, p in enumerate(PEOPLE):
        steward = p.role == "steward"
        writer.writerow(
            (
                STREET,
                p.community,
                p.zone,
                p.pair,
                p.name,
                _written(p.phone, n),
                roles[p.role],
                "英文" if p.language == "en" else "中文",
                (p.start or "08:00") if steward else "",
                (p.days or EVERY_DAY) if steward else "",
                p.birth,
                f"1201052026{n:04d}",
                joined.isoformat(),
            )
        )
    return buffer.getvalue()


def roster_plan(text: str, settings: Settings, today: date) -> RosterPlan:
    """Read the file exactly as `steward roster import` does; the demo's file must be clean."""
    result = parse_roster(
        decode_roster(text.encode("utf-8-sig")),
        region=settings.DEFAULT_REGION,
        default_language=settings.DEFAULT_LANGUAGE,
        default_patrol_start=settings.PATROL_START,
        today=today,
    )
    if isinstance(result, list):
        raise ValueError("the demo roster does not import: " + "; ".join(map(str, result)))
    return result


# --- the script --------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Event:
    """One thing that happens: a text from a phone, a job run, or a moment the outbox looks."""

    at: datetime
    seq: int
    kind: str  # "text" | "job" | "tick"
    sender: str = ""
    body: str = ""  # the text, or the job's name


@dataclass
class Script:
    tz: ZoneInfo
    events: list[Event] = field(default_factory=list)

    def at(self, day: date, hh: int, mm: int, ss: int = 0) -> datetime:
        """A local wall-clock time that day (minutes may run past 59)."""
        midnight = datetime.combine(day, time(0), tzinfo=self.tz)
        return utc(midnight + timedelta(hours=hh, minutes=mm, seconds=ss))

    def add(self, at: datetime, kind: str, sender: str = "", body: str = "") -> None:
        self.events.append(Event(at, len(self.events), kind, sender, body))

    def text(self, key: str, day: date, hh: int, mm: int, body: str) -> None:
        phone = BY_KEY[key].phone if key in BY_KEY else key
        self.add(self.at(day, hh, mm), "text", phone, body)

    def job(self, day: date, hh: int, mm: int, name: str) -> None:
        self.add(self.at(day, hh, mm), "job", body=name)


def demo_start(now: datetime, tz: ZoneInfo) -> datetime:
    """The next DEMO_MORNING after `now`: the moment the demo opens at."""
    local = utc(now).astimezone(tz)
    opening = datetime.combine(local.date(), DEMO_MORNING, tzinfo=tz)
    if opening <= local:
        opening += timedelta(days=1)
    return utc(opening)


def build_script(start: datetime, tz: ZoneInfo) -> list[Event]:
    """Everything that happened in the two weeks before `start`, in order."""
    rng = random.Random(SEED)
    today = local_date(start, tz)
    script = Script(tz)
    for back in range(HISTORY_DAYS, 0, -1):
        day = today - timedelta(days=back)
        _patrols(script, day, back, rng)
        _day_jobs(script, day)
    _reports(script, today)
    _lives(script, today)
    script.add(script.at(today, 7, 0, 5), "tick")  # what day close held overnight goes out
    script.text("zhou", today, 7, 33, "签到")
    return sorted(e for e in script.events if e.at <= start)


def _scheduled(p: Person, day: date) -> bool:
    return p.days != WEEKDAYS or day.weekday() < 5


def _absent(p: Person, back: int, luck: float) -> bool:
    """Who stays home: now and then anyone; 郑小燕, the last five days running (one more and the
    office reviews her); 黄志强 on leave (three days asked, back after two)."""
    if p.key == "zheng":
        return back <= 5
    if p.key == "huang" and back in (6, 7):
        return True
    return luck < 0.06


def _patrols(script: Script, day: date, back: int, rng: random.Random) -> None:
    pairs: dict[str, list[Person]] = {}
    for p in PEOPLE:
        if p.role == "steward":
            pairs.setdefault(p.pair, []).append(p)
    for members in pairs.values():
        first = members[0]
        hh, mm = map(int, (first.start or "08:00").split(":"))
        if not _scheduled(first, day):
            continue
        set_out = hh * 60 + mm + rng.randint(-4, 12)
        for p in members:
            luck = rng.random()
            if _absent(p, back, luck):
                continue
            minutes = rng.randint(45, 100) if luck < 0.16 else rng.randint(121, 150)
            start = set_out + rng.randint(0, 4)
            _patrol(script, p, day, start, minutes, back, rng)


def _patrol(
    script: Script, p: Person, day: date, start: int, minutes: int, back: int, rng: random.Random
) -> None:
    if p.key == "david" and back == 10:  # a typo: the service asks before acting
        script.text(p.key, day, 0, start, "chekin")
        script.text(p.key, day, 0, start + 1, "1")
    else:
        script.text(p.key, day, 0, start, rng.choice(CHECK_IN[p.language]))
    if p.key == "li" and back == 9:
        return  # forgets to check out: the session closes itself, a lead confirms it next day
    end = start + minutes
    script.text(p.key, day, 0, end, rng.choice(CHECK_OUT[p.language]))
    if rng.random() < 0.1:
        script.text(p.key, day, 0, end + 25, "积分" if p.language == "zh" else "P")


def _day_jobs(script: Script, day: date) -> None:
    script.add(script.at(day, 7, 0, 5), "tick")
    # Fewer runs than the scheduler makes (every job computes from state, so the messages are
    # the same, a few minutes later): two weeks must replay in seconds.
    for hh, mm in ((8, 31), (9, 1), (10, 1)):
        script.job(day, hh, mm, "nudges")
    for hh, mm in ((12, 10), (14, 10)):
        script.job(day, hh, mm, "sessions")
    script.job(day, 15, 5, "reports")
    script.job(day, 18, 0, "digest")
    script.job(day, 22, 0, "day_close")


def _reports(s: Script, today: date) -> None:
    """Eight reports, numbered in the order filed, left in every state a report can be in."""

    def d(back: int) -> date:
        return today - timedelta(days=back)

    # 1: filed, accepted, fixed, checked on site: closed.
    s.text("wang", d(13), 9, 10, "报 1 振华里5号楼门口垃圾堆放")
    s.text("zhao", d(13), 9, 40, "受理 1")
    s.text("zhao", d(13), 15, 0, "办结 1 已通知环卫清运")
    s.text("wang", d(12), 8, 20, "是 1")
    # 2: the reporter says it is not fixed; fixed again; closed.
    s.text("zhou", d(11), 8, 50, "报 路灯 志成道北段3号路灯不亮")
    s.text("chen", d(11), 10, 0, "ACK 2")
    s.text("chen", d(10), 16, 0, "FIXED 2 bulb replaced")
    s.text("zhou", d(9), 8, 10, "否 2")
    s.text("chen", d(8), 17, 0, "FIXED 2 wiring repaired")
    s.text("zhou", d(7), 8, 5, "是 2")
    # 3: rejected, with the reason.
    s.text("li", d(10), 9, 30, "R 3 cars parked on the pavement at the west lane corner")
    s.text("zhao", d(10), 11, 0, "驳回 3 已转交警处理")
    # 4: filed through the guided menu; accepted, being handled.
    s.text("ma", d(8), 9, 15, "报")
    s.text("ma", d(8), 9, 16, "6")
    s.text("ma", d(8), 9, 17, "12号楼楼上漏水，两户邻居起了争执")
    s.text("sun", d(8), 10, 30, "受理 4")
    # 5: urgent (the office hears at once); fixed, never checked: closed unverified after 48 h.
    s.text("david", d(6), 9, 0, "R 4 fire exit blocked by bikes at block 12")
    s.text("chen", d(6), 9, 20, "ACK 5")
    s.text("chen", d(6), 14, 0, "FIXED 5 bikes moved, exit clear")
    # 6: fixed yesterday, waiting for the reporter to check.
    s.text("liu", d(3), 8, 40, "报 2 振华里东巷井盖松动")
    s.text("zhao", d(3), 9, 30, "受理 6")
    s.text("zhao", d(1), 15, 30, "办结 6 已更换井盖")
    # 7: nobody has accepted it: the lead has been reminded; the office hears next.
    s.text("he", d(2), 9, 20, "报 1 河沿胡同垃圾桶满溢")
    # 8: new, filed yesterday afternoon.
    s.text("wu", d(1), 16, 30, "报 5 志成道南口楼顶私搭棚子")


def _lives(s: Script, today: date) -> None:
    """The rest of a fortnight: leave, a lead's confirmation, questions, a stranger."""
    s.text("huang", today - timedelta(days=7), 7, 50, "请假 3")
    s.text("huang", today - timedelta(days=5), 7, 55, "销假")
    s.text("zhao", today - timedelta(days=8), 9, 40, "确认 Li Wei")
    s.text("zhao", today - timedelta(days=2), 9, 0, "今日")
    s.text("qian", today - timedelta(days=1), 10, 0, "今日")
    s.text(RESIDENT, today - timedelta(days=4), 19, 12, "你好，怎么报名当小巷管家？")


# --- playing it --------------------------------------------------------------------------------


class ManualClock:
    """The clock the history is played on: it stands where the script says."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True)
class Seeded:
    """What the demo street holds once seeded."""

    start: datetime
    roster: ImportSummary
    roster_csv: str
    texts: int
    jobs: int


async def seed(settings: Settings, start: datetime) -> Seeded:
    """Import the roster and play two weeks of history up to `start` (database connected)."""
    events = build_script(start, settings.tz)
    first = events[0].at if events else start
    joined = local_date(start, settings.tz) - timedelta(days=HISTORY_DAYS)
    clock = ManualClock(first)
    units = UnitOfWork()
    writer = InboundWriter(units)
    processor = Processor(settings, units, poll_seconds=settings.OUTBOX_POLL_SECONDS)
    # The demo's own sending rate: two weeks are replayed in seconds, not at 1 SMS a second.
    dispatcher = Dispatcher(
        {"sms": SimulatorSender(), "telegram": TelegramGroupSender()},
        rates={"sms": 10_000.0, "telegram": 10_000.0},
        spacings={},  # nor Telegram's per-chat spacing, which would be waited out in real time
        max_attempts=settings.OUTBOX_MAX_ATTEMPTS,
        poll_seconds=settings.OUTBOX_POLL_SECONDS,
    )
    text = roster_csv(joined)
    with reading(clock):
        summary = await apply_roster(roster_plan(text, settings, joined), dry_run=False)
        await _telegram_groups(writer, processor, units, first)
        for n, event in enumerate(events):
            clock.now = event.at
            if event.kind == "text":
                await writer.store(
                    InboundMessage(
                        channel="sms",
                        address=event.sender,
                        text=event.body,
                        external_id=f"SIMDEMO{n:06d}",
                        received_at=event.at,
                    )
                )
                await processor.drain()
            elif event.kind == "job" and not await run_job(
                event.body, settings, event.at, units=units
            ):
                continue  # the job queued nothing: nothing to send
            clock.now = event.at + REPLY_AFTER
            await dispatcher.drain()
        clock.now = max(start, clock.now)
        await dispatcher.drain()
        await writer.close()
        await dispatcher.stop()
    return Seeded(
        start=start,
        roster=summary,
        roster_csv=text,
        texts=sum(e.kind == "text" for e in events),
        jobs=sum(e.kind == "job" for e in events),
    )


async def _telegram_groups(
    writer: InboundWriter, processor: Processor, units: UnitOfWork, at: datetime
) -> None:
    """The leads and the office link Telegram (sharing their own number in a private chat) and
    bind their groups with one-time codes, as `steward chats invite` and `/bind` do."""
    for key, user in TELEGRAM_USER.items():
        await writer.store(
            InboundMessage(
                channel="telegram",
                address=f"telegram:{user}",
                text="",
                external_id=f"SIMDEMO-link-{user}",
                received_at=at,
                contact_phone=BY_KEY[key].phone,
                contact_user_id=user,
            )
        )
    await processor.drain()
    binds: list[tuple[str | None, str, str, int]] = [
        (community, "lead", key, chat) for community, (key, chat) in LEAD_GROUPS.items()
    ]
    binds.append((None, "office", *OFFICE_GROUP))
    for community, role, key, chat in binds:
        made = await group_shell.invite(STREET, community, role, at, units)
        who = BY_KEY[key]
        await writer.store(
            InboundMessage(
                channel="telegram",
                address=f"telegram:{chat}",
                text=f"/bind {made.code}",
                external_id=f"SIMDEMO-bind-{chat}",
                received_at=at,
                group=GroupPost(TELEGRAM_USER[key], who.name, community or STREET),
            )
        )
    await processor.drain()
