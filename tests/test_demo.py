"""The demo street: seeded through the roster import, texts and jobs, at explicit past times."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from steward.clock import utc
from steward.demo import (
    HISTORY_DAYS,
    PEOPLE,
    STREET,
    build_script,
    demo_start,
    roster_csv,
    roster_plan,
    seed,
)
from steward.settings import Settings, load_settings
from steward.shells.jobs import run_job
from steward.storage.models import (
    AttendanceDay,
    ChatGroup,
    Community,
    InboundMessage,
    OutboxMessage,
    Pair,
    PatrolSession,
    PointsEntry,
    Report,
    Volunteer,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 23, 7, 45, tzinfo=SHANGHAI)  # a Monday morning


def demo_settings(database_url: str) -> Settings:
    return load_settings(
        DATABASE_URL=database_url, SIMULATOR=True, SCHEDULER=False, TIMEZONE="Asia/Shanghai"
    )


def test_the_demo_opens_on_the_next_morning() -> None:
    assert demo_start(datetime(2026, 11, 23, 6, 0, tzinfo=SHANGHAI), SHANGHAI) == utc(START)
    later = datetime(2026, 11, 23, 7, 45, tzinfo=SHANGHAI)
    assert demo_start(later, SHANGHAI) == utc(START + timedelta(days=1))


def test_the_script_is_two_weeks_in_order_and_the_same_every_time() -> None:
    events = build_script(utc(START), SHANGHAI)
    assert events == build_script(utc(START), SHANGHAI)
    assert events == sorted(events)
    assert events[-1].at <= utc(START)
    first_day = events[0].at.astimezone(SHANGHAI).date()
    assert first_day == START.date() - timedelta(days=HISTORY_DAYS)
    kinds = Counter(e.kind for e in events)
    assert kinds["job"] > 100 and kinds["text"] > 250


def test_the_roster_file_imports_cleanly() -> None:
    settings = load_settings()
    plan = roster_plan(roster_csv(START.date()), settings, START.date())
    assert len(plan.rows) == len(PEOPLE)
    assert {row.phone for row in plan.rows} == {p.phone for p in PEOPLE}
    assert sorted(len(p.lines) for p in plan.pairs) == [1, 2, 2, 2, 2, 2]  # one vacancy


async def test_the_demo_street(db: str) -> None:
    settings = demo_settings(db)
    seeded = await seed(settings, utc(START))
    assert seeded.roster.added == len(PEOPLE)

    # The roster: three communities, six pairs (one a vacancy), leads, an office, two languages.
    assert await Community.filter(street__name=STREET).count() == 3
    assert await Pair.all().count() == 6
    roles = Counter(await Volunteer.all().values_list("role", flat=True))
    assert roles == {"steward": 11, "lead": 3, "office": 1}
    assert await Volunteer.filter(language="en").count() >= 3

    # Every text was processed and answered; every message went out through the simulator.
    assert await InboundMessage.filter(processed_at__isnull=True).count() == 0
    assert await InboundMessage.filter(last_error__isnull=False).count() == 0
    statuses = Counter(await OutboxMessage.all().values_list("status", flat=True))
    assert set(statuses) == {"sent"}
    by_sms = await OutboxMessage.filter(channel="sms", provider_id__startswith="SIM").count()
    by_telegram = await OutboxMessage.filter(
        channel="telegram", provider_id__startswith="tg:"
    ).count()
    assert by_sms + by_telegram == statuses["sent"]

    # The leads' and the office's Telegram groups are bound, and the leads' alerts went there:
    # each report a card with its buttons, no lead alert by SMS.
    groups = await ChatGroup.all().order_by("chat_id").values_list("chat_id", "role")
    assert groups == [(-1003, "lead"), (-1002, "lead"), (-1001, "lead"), (-1000, "office")]
    cards = Counter(
        await OutboxMessage.filter(keyboard__startswith="card:").values_list("address", flat=True)
    )
    # Eight reports in the lead groups; the urgent one (#5) in the office's too.
    assert sum(cards.values()) == 9 and cards["telegram:-1000"] == 1
    leads = await Volunteer.filter(role="lead").values_list("phone", flat=True)
    assert not await OutboxMessage.filter(address__in=list(leads), kind="alert").exists()
    kinds = set(await OutboxMessage.all().values_list("kind", flat=True))
    assert {"reply", "alert", "nudge", "digest", "report_update"} <= kinds

    # Reports in every state a report can stand in.
    reports = dict(await Report.all().values_list("number", "status"))
    assert reports == {
        1: "closed",
        2: "closed",
        3: "rejected",
        4: "acknowledged",
        5: "closed_unverified",
        6: "resolved",
        7: "new",
        8: "new",
    }
    assert await Report.filter(number=5, urgent=True).exists()

    # Two weeks of patrol days, settled, with points; some missed, some on leave.
    days = Counter(await AttendanceDay.all().values_list("status", flat=True))
    assert days["done"] > 100 and days["absent"] > 0 and days["excused"] == 2
    assert days["partial"] > 0 and days["off"] > 0  # C1 patrols on weekdays only
    # (a session a lead confirmed after its day was settled is paid too)
    assert await PointsEntry.filter(kind="patrol_day").count() >= days["done"]

    # 郑小燕 has missed five days running: one more and the office reviews her.
    zheng = await Volunteer.get(name="郑小燕")
    last = await AttendanceDay.filter(volunteer_id=zheng.id).order_by("-local_date").limit(5)
    assert [d.status for d in last] == ["absent"] * 5 and zheng.status == "active"
    # The morning has begun: B1 sets out at 7:30 and 周玉梅 is out already.
    zhou = await Volunteer.get(name="周玉梅")
    assert await PatrolSession.filter(volunteer_id=zhou.id, ended_at__isnull=True).exists()

    # The day closes without her: flagged, and the office is told.
    evening = utc(START.replace(hour=22, minute=0))
    flags = await run_job("day_close", settings, evening)
    assert any("郑小燕" in n.body and n.to.name == "钱丽华" for n in flags)
    assert (await Volunteer.get(id=zheng.id)).status == "flagged"
