"""Reply catalogue in Chinese and English.

Kept short on purpose: check-in, check-out, points and help replies must fit one SMS segment
(70 characters with any Chinese, 160 in plain GSM-7 English), everything else two. The limits are
enforced by tests that render every template with long, realistic values.
"""

from __future__ import annotations

from collections.abc import Mapping

Catalogue = Mapping[str, Mapping[str, str]]

# Templates whose replies must fit a single segment (SPEC §3 "Replies").
ONE_SEGMENT = frozenset(
    {
        "checked_in",
        "already_checked_in",
        "checked_out_goal",
        "checked_out_partial",
        "checked_out_after_goal",
        "checked_out_unconfirmed",
        "not_checked_in",
        "points",
    }
)

TEXTS: Catalogue = {
    "checked_in": {
        "zh": "{name}，{time}签到成功，祝巡查顺利！结束时回复2签退。",
        "en": "{name}, checked in at {time}. Have a good patrol! Text OUT (or 2) when you finish.",
    },
    "already_checked_in": {
        "zh": "您{time}已签到，正在巡查中。结束时回复2签退。",
        "en": "You have been checked in since {time}. Text OUT (or 2) when you finish.",
    },
    "checked_out_goal": {
        "zh": "{time}签退成功，本次{duration}，今日共{total}，达标+{points}分，辛苦了！",
        "en": "Checked out at {time}: {duration} now, {total} today. "
        "Goal reached, +{points} points. Thank you!",
    },
    "checked_out_partial": {
        "zh": "{time}签退成功，本次{duration}，今日共{total}，还差{remaining}达标。",
        "en": "Checked out at {time}: {duration} now, {total} today. "
        "{remaining} more reaches today's goal.",
    },
    "checked_out_after_goal": {
        "zh": "{time}签退成功，本次{duration}，今日共{total}，今日已达标，辛苦了！",
        "en": "Checked out at {time}: {duration} now, {total} today. "
        "Today's goal was already met. Thank you!",
    },
    "checked_out_unconfirmed": {
        "zh": "{time}签退。本次超过{max_hours}小时，需片长确认后才计入时长。",
        "en": "Checked out at {time}. The patrol ran over {max_hours} hours, "
        "so it counts once your lead confirms it.",
    },
    "not_checked_in": {
        "zh": "您现在没有签到。开始巡查时回复1签到。",
        "en": "You are not checked in. Text IN (or 1) when you start your patrol.",
    },
    "points": {
        "zh": "{name}：积分{balance}分，本月+{month}，街道第{rank}名（共{ranked}人）。",
        "en": "{name}: {balance} points, +{month} this month, "
        "rank {rank} of {ranked} in your street.",
    },
    "unknown": {
        "zh": "抱歉，没看懂您的短信。{menu}",
        "en": "Sorry, we did not understand that. {menu}",
    },
    "did_you_mean": {
        "zh": "您是想发“{keyword}”吗？回复1确认。",
        "en": "Did you mean {keyword}? Reply 1 to confirm.",
    },
    "not_registered": {
        "zh": "您好，本号码未登记为小巷管家。如想加入，请联系所在社区。",
        "en": "Hello, this number is not registered with Alley Steward. "
        "To join, please contact your community office.",
    },
    "removed": {
        "zh": "您好，您已不再登记为小巷管家，感谢您的付出！如有疑问请联系社区。",
        "en": "Hello, you are no longer registered as an alley steward. "
        "Thank you for your service! Questions: please contact your community.",
    },
    "stopped": {
        "zh": "已退订，今后不再给您发短信。回复“订阅”可恢复。",
        "en": "You are unsubscribed and will get no more texts from us. Reply START to resume.",
    },
    "started": {
        "zh": "已恢复短信，欢迎回来！回复0查看菜单。",
        "en": "Welcome back! Texts are on again. Reply HELP for the menu.",
    },
    "undo_check_in": {
        "zh": "已撤销{time}的签到。",
        "en": "Your check-in at {time} is undone.",
    },
    "undo_check_out": {
        "zh": "已撤销{time}的签退，巡查继续计时。",
        "en": "Your check-out at {time} is undone; your patrol goes on.",
    },
    "nothing_to_undo": {
        "zh": "最近{minutes}分钟内没有可撤销的签到或签退。",
        "en": "There is no check-in or check-out from the last {minutes} minutes to undo.",
    },
    "not_yet_available": {
        "zh": "此功能暂未开通短信办理，请联系片长。{menu}",
        "en": "This is not available by text yet; please contact your lead. {menu}",
    },
}

_DURATION = {
    "zh": ("{h}小时{m}分", "{h}小时", "{m}分钟"),
    "en": ("{h} h {m} min", "{h} h", "{m} min"),
}


def render(key: str, language: str, **values: object) -> str:
    """Fill template `key` in `language` (falls back to Chinese, the programme's language)."""
    templates = TEXTS[key]
    template = templates.get(language) or templates["zh"]
    return template.format(**values)


def duration(minutes: int, language: str) -> str:
    """Say a number of minutes the way a volunteer would read it ("2小时5分", "2 h 5 min")."""
    both, hours_only, minutes_only = _DURATION.get(language, _DURATION["zh"])
    hours, rest = divmod(max(minutes, 0), 60)
    if hours and rest:
        return both.format(h=hours, m=rest)
    if hours:
        return hours_only.format(h=hours)
    return minutes_only.format(m=rest)


def short_name(name: str, language: str) -> str:
    """Address people as a reply would: the full Chinese name, or an English first name."""
    if language == "en" and " " in name.strip():
        return name.strip().split()[0]
    return name.strip()
