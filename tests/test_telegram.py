"""Telegram private chats through the real PTB client and the Bot API stand-in (SPEC §6-7).

The stand-in delivers each update to our webhook (in-process, with the secret header) and
records what the bot sends; the twilio stand-in catches the SMS fallback.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import time_machine

from steward.clock import utc
from steward.shells import jobs as job_shells
from steward.storage.models import (
    Attachment,
    InboundMessage,
    OutboxMessage,
    PatrolSession,
    Report,
    Volunteer,
)
from tests.fakes.telegram_api import FakeTelegram, FakeUser
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import Service, running_service, seed_street, service_settings, status_form

SHANGHAI = ZoneInfo("Asia/Shanghai")
SECRET = "telegram-webhook-secret"
CHECKED_IN_8 = "王秀英，8:00签到成功，祝巡查顺利！结束时回复2签退。"


def at(hour: int, minute: int = 0, day: int = 23) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


@asynccontextmanager
async def telegram_service(
    db: str, twilio: FakeTwilio, telegram: FakeTelegram
) -> AsyncIterator[Service]:
    settings = service_settings(
        db,
        twilio,
        TELEGRAM_BOT_TOKEN=telegram.token,
        TELEGRAM_API_BASE=telegram.base_url,
        TELEGRAM_WEBHOOK_SECRET=SECRET,
    )
    async with running_service(settings, twilio, background=False) as svc:
        telegram.webhook_transport = httpx.ASGITransport(app=svc.app)
        yield svc


async def linked(svc: Service, telegram: FakeTelegram, user: FakeUser, phone: str) -> None:
    delivery = await telegram.share_contact(user, phone)
    assert delivery.status == 200
    await svc.drain()


def texts_to(telegram: FakeTelegram, user: FakeUser) -> list[str]:
    return [m.text or "" for m in telegram.messages_to(user.id)]


async def test_linking_by_sharing_ones_own_contact(
    db: str, twilio: FakeTwilio, telegram_api: FakeTelegram
) -> None:
    street = await seed_street()
    wang = telegram_api.user(5001, "秀英")
    someone = telegram_api.user(5002, "Stranger")
    async with telegram_service(db, twilio, telegram_api) as svc:
        with time_machine.travel(at(7, 55), tick=False):
            await telegram_api.private_text(wang, "/start")
            await svc.drain()
            # Someone else's card does not link, and neither does a number not on the roster.
            await telegram_api.share_contact(wang, "+8613800138002", contact_user_id=6000)
            await svc.drain()
            await telegram_api.share_contact(someone, "+8613900000000")
            await svc.drain()
            await linked(svc, telegram_api, wang, "8613800138001")  # Telegram omits the "+"
        with time_machine.travel(at(8, 0), tick=False):
            await telegram_api.private_text(wang, "签到")
            await svc.drain()
    sent = telegram_api.messages_to(wang.id)
    assert [m.text for m in sent] == [
        "您好！请点下方“分享手机号”按钮，绑定小巷管家账号。",
        "请用下方按钮分享您自己的手机号，不能用别人的名片绑定。",
        "绑定成功，王秀英！以后可用下方按钮签到、签退、上报。",
        CHECKED_IN_8,
    ]
    share = sent[0].buttons
    assert share == [{"text": "分享手机号", "request_contact": True}]
    assert sent[2].button_texts == ["签到", "签退", "上报", "积分", "帮助"]
    assert texts_to(telegram_api, someone) == ["这个手机号不在管家名册上。如需加入，请联系社区。"]
    assert (await Volunteer.get(id=street.wang.id)).telegram_chat_id == wang.id
    assert await PatrolSession.filter(volunteer_id=street.wang.id).count() == 1
    assert twilio.messages == []  # nothing went by SMS


async def test_an_english_speaker_gets_english_buttons_and_the_same_grammar(
    db: str, twilio: FakeTwilio, telegram_api: FakeTelegram
) -> None:
    await seed_street()
    li = telegram_api.user(5003, "Wei")
    async with telegram_service(db, twilio, telegram_api) as svc:
        with time_machine.travel(at(8, 0), tick=False):
            await linked(svc, telegram_api, li, "+8613800138002")
            await telegram_api.private_text(li, "Check in")  # the big button's label
            await svc.drain()
        with time_machine.travel(at(10, 5), tick=False):
            await telegram_api.private_text(li, "Check out")
            await svc.drain()
    sent = telegram_api.messages_to(li.id)
    assert sent[0].button_texts == ["Check in", "Check out", "Report", "Points", "Help"]
    assert [m.text for m in sent[1:]] == [
        "Li, checked in at 8:00. Have a good patrol! Text OUT (or 2) when you finish.",
        "Checked out at 10:05: 2 h 5 min now, 2 h 5 min today. Goal reached, +10 points. Thank you!",
    ]


def tiny_png() -> bytes:
    """A valid 1x1 PNG, as a phone camera would send a (much larger) JPEG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


async def test_a_report_with_a_photo_and_a_location(
    db: str, twilio: FakeTwilio, telegram_api: FakeTelegram
) -> None:
    street = await seed_street()
    wang = telegram_api.user(5001, "秀英")
    image = tiny_png()
    async with telegram_service(db, twilio, telegram_api) as svc:
        with time_machine.travel(at(9, 0), tick=False):
            await linked(svc, telegram_api, wang, "+8613800138001")
            await telegram_api.send_location(wang, 39.14, 117.18)  # no report yet
            await svc.drain()
            await telegram_api.private_text(wang, "报 1 5号楼门口垃圾堆放")
            await svc.drain()
        with time_machine.travel(at(9, 2), tick=False):
            await telegram_api.send_photo_from(wang, image)
            await svc.drain()
            await telegram_api.send_location(wang, 39.14, 117.18)
            await svc.drain()
    assert texts_to(telegram_api, wang)[1:] == [
        "收到位置。请先上报问题（回复3），再发送位置。",
        "已收到上报#1（环境卫生），+2分。处理进展会短信告诉您。",
        "照片已附到上报#1，谢谢！",
        "位置已附到上报#1，谢谢！",
    ]
    report = await Report.get(number=1)
    kinds = (
        await Attachment.filter(report_id=report.id)
        .order_by("id")
        .values_list("kind", "latitude", "longitude", "url")
    )
    assert [(k, lat, lon) for k, lat, lon, _ in kinds] == [
        ("photo", None, None),
        ("location", 39.14, 117.18),
    ]
    photo_path = kinds[0][3].removeprefix("file://")
    with open(photo_path, "rb") as stored:
        assert stored.read() == image  # downloaded through getFile
    # The lead still hears by SMS: lead groups come with the next slice.
    assert [m.to for m in twilio.messages] == [street.lead.phone]


async def test_a_redelivered_update_has_one_effect_and_a_bad_secret_stores_nothing(
    db: str, twilio: FakeTwilio, telegram_api: FakeTelegram
) -> None:
    street = await seed_street()
    wang = telegram_api.user(5001, "秀英")
    async with telegram_service(db, twilio, telegram_api) as svc:
        with time_machine.travel(at(8, 0), tick=False):
            await linked(svc, telegram_api, wang, "+8613800138001")
            first = await telegram_api.private_text(wang, "签到")
            again = await telegram_api.redeliver(first)
            await svc.drain()
            forged = await svc.http.post(
                "/telegram/webhook",
                json=first.update,
                headers={"X-Telegram-Bot-Api-Secret-Token": "guess"},
            )
            missing = await svc.http.post("/telegram/webhook", json=first.update)
            garbage = await svc.http.post(
                "/telegram/webhook",
                content=b"{not json",
                headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
            )
    assert (first.status, again.status) == (200, 200)
    assert (forged.status_code, missing.status_code, garbage.status_code) == (403, 403, 400)
    assert await InboundMessage.filter(channel="telegram").count() == 2  # contact + 签到
    assert await PatrolSession.filter(volunteer_id=street.wang.id).count() == 1
    assert texts_to(telegram_api, wang)[1:] == [CHECKED_IN_8]


async def test_flood_control_is_waited_out_then_the_reply_goes(
    db: str, twilio: FakeTwilio, telegram_api: FakeTelegram
) -> None:
    await seed_street()
    wang = telegram_api.user(5001, "秀英")
    async with telegram_service(db, twilio, telegram_api) as svc:
        with time_machine.travel(at(8, 0), tick=False):
            await linked(svc, telegram_api, wang, "+8613800138001")
            telegram_api.flood("sendMessage", retry_after=7)
            await telegram_api.private_text(wang, "签到")
            await svc.drain()
            row = await OutboxMessage.filter(kind="reply").order_by("-id").first()
            assert row is not None
            assert (row.status, row.error_code) == ("queued", "429")
            assert utc(row.next_attempt_at) == utc(at(8, 0)) + timedelta(seconds=7)
        with time_machine.travel(at(8, 0) + timedelta(seconds=6), tick=False):
            assert await svc.drain() == 0  # not before Telegram's retry_after
        with time_machine.travel(at(8, 0) + timedelta(seconds=7), tick=False):
            assert await svc.drain() == 1
    assert texts_to(telegram_api, wang)[1:] == [CHECKED_IN_8]


async def test_a_volunteer_who_blocked_the_bot_is_reached_by_sms(
    db: str, twilio: FakeTwilio, telegram_api: FakeTelegram
) -> None:
    street = await seed_street()
    wang = telegram_api.user(5001, "秀英")
    async with telegram_service(db, twilio, telegram_api) as svc:
        with time_machine.travel(at(8, 0), tick=False):
            await linked(svc, telegram_api, wang, "+8613800138001")
        # Nudges go to linked volunteers by Telegram...
        with time_machine.travel(at(8, 31), tick=False):
            await job_shells.run_job("nudges", svc.settings, utc(at(8, 31)))
            await svc.drain()
        assert len(telegram_api.messages_to(wang.id)) == 2
        # ... until the bot is blocked: then by SMS, and the chat is unlinked.
        telegram_api.block(wang.id)
        with time_machine.travel(at(9, 0), tick=False):
            await svc.text(street.wang.phone, "签到")
            await svc.drain()
            await job_shells.run_job("nudges", svc.settings, utc(at(8, 31, day=24)))
        with time_machine.travel(at(8, 31, day=24), tick=False):
            await job_shells.run_job("nudges", svc.settings, utc(at(8, 31, day=24)))
            await svc.drain()
    assert (await Volunteer.get(id=street.wang.id)).telegram_chat_id is None
    rows = await OutboxMessage.filter(volunteer_id=street.wang.id).order_by("id")
    channels = [(r.channel, r.status) for r in rows]
    assert ("telegram", "failed") in channels
    to_wang = [m.body for m in twilio.messages if m.to == street.wang.phone]
    assert to_wang[0].startswith("王秀英，9:00签到成功")  # the reply to her SMS, by SMS
    assert any("巡查" in body for body in to_wang[1:])  # the next day's nudge, by SMS too


async def test_an_undelivered_sms_goes_by_telegram_or_the_leads_are_told(
    db: str, twilio: FakeTwilio, telegram_api: FakeTelegram
) -> None:
    street = await seed_street()
    wang = telegram_api.user(5001, "秀英")
    async with telegram_service(db, twilio, telegram_api) as svc:
        with time_machine.travel(at(8, 0), tick=False):
            await linked(svc, telegram_api, wang, "+8613800138001")
            await svc.text(street.wang.phone, "签到")  # she texts; the reply goes by SMS
            await svc.text(street.li.phone, "IN")  # Li has no Telegram
            [to_wang, to_li] = await svc.settle()
            for sent in (to_wang, to_li):
                form = status_form(sent.sid, "undelivered", "30003")
                response = await svc.post_signed("/twilio/status", form)
                assert response.status_code == 200
            await svc.drain()
    assert texts_to(telegram_api, wang)[1:] == [CHECKED_IN_8]  # the same words, by Telegram
    to_lead = [m.body for m in twilio.messages if m.to == street.lead.phone]
    assert to_lead == [
        "短信未能送达Li Wei（138****8002），请电话联系："
        "Li, checked in at 8:00. Have a good patrol! Text OUT (or 2) when you finish."
    ]
