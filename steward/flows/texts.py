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
        "report_filed",
        "points_awarded",
        "points_redeemed",
        "points_corrected",
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
    # ---- the office's points actions (the free text is clipped to keep one segment) ----
    "points_awarded": {
        "zh": "{name}，街道奖励您{points}分：{reason}。现有积分{balance}分。",
        "en": "{name}, the street office awarded you {points} points: {reason}. "
        "Balance: {balance} points.",
    },
    "points_redeemed": {
        "zh": "{name}，已用{points}分兑换：{item}。剩余积分{balance}分。",
        "en": "{name}, you redeemed {points} points for: {item}. Balance: {balance} points.",
    },
    "points_corrected": {
        "zh": "{name}，积分更正{change}分：{reason}。现有积分{balance}分。",
        "en": "{name}, your points were corrected by {change}: {reason}. "
        "Balance: {balance} points.",
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
        "zh": "最近{minutes}分钟内没有可撤销的签到、签退或上报。",
        "en": "There is no check-in, check-out or report from the last {minutes} minutes to undo.",
    },
    "undo_report": {
        "zh": "已撤回上报#{number}，扣回{points}分，已告知片长。",
        "en": "Report #{number} is withdrawn and its {points} points taken back. "
        "Your lead has been told.",
    },
    "undo_report_too_late": {
        "zh": "上报#{number}{status}，不能撤回了。如有误请联系片长。",
        "en": "Report #{number} is {status} and can no longer be withdrawn. "
        "Please tell your lead if it was a mistake.",
    },
    "report_withdrawn": {
        "zh": "上报#{number}【{category}】{place}已由{reporter}撤回，无需处理。",
        "en": "Report #{number} ({category}, {place}) was withdrawn by {reporter}. Nothing to do.",
    },
    # ---- reports ----
    "report_filed": {
        "zh": "已收到上报#{number}（{category}），+{points}分。处理进展会短信告诉您。",
        "en": "Report #{number} ({category}) received, +{points} points. "
        "We will text you as it moves on.",
    },
    "report_menu": {
        "zh": "请回复类别数字：{menu}",
        "en": "Reply with a number: {menu}",
    },
    "report_menu_with_photo": {
        "zh": "照片已收到。请回复类别数字：{menu}",
        "en": "Photo received. Reply with a number: {menu}",
    },
    "report_ask_description": {
        "zh": "好的，{category}。请用一条短信说明情况和地点，可附照片。",
        "en": "OK, {category}. Please text what you saw and where; a photo helps.",
    },
    "photo_attached": {
        "zh": "照片已附到上报#{number}，谢谢！",
        "en": "Photo added to report #{number}. Thank you!",
    },
    "report_alert": {
        "zh": "{urgent}新上报#{number}【{category}】{place}{duplicate}，"
        "{reporter}{phone}：{description}（转{department}）回复“受理{number}”受理",
        # Terse: a Chinese description turns an English alert into 67-character segments.
        "en": "{urgent}#{number} {category}, {place}{duplicate}. {reporter} {phone}: "
        "{description} ({department}) ACK {number}",
    },
    "report_acknowledged": {
        "zh": "您的上报#{number}已受理，正在处理，+{points}分。谢谢！",
        "en": "Your report #{number} was accepted and is being handled, +{points} points. Thanks!",
    },
    "report_resolved": {
        "zh": "上报#{number}已处理：{note}。请到现场看看，"
        "好了回复“是{number}”，没好回复“否{number}”。",
        "en": "Report #{number} is fixed: {note}. Please check on site and reply YES {number} "
        "if it is, NO {number} if not.",
    },
    "report_rejected": {
        "zh": "上报#{number}未被受理，原因：{reason}。如有疑问请联系片长。",
        "en": "Report #{number} was not accepted: {reason}. Questions? Please contact your lead.",
    },
    "report_verified": {
        "zh": "谢谢核实！上报#{number}已结案，+{points}分。",
        "en": "Thanks for checking! Report #{number} is closed, +{points} points.",
    },
    "report_reopened": {
        "zh": "谢谢反馈，上报#{number}已退回继续处理。",
        "en": "Thanks for telling us. Report #{number} goes back for more work.",
    },
    "report_reopened_alert": {
        "zh": "上报#{number}【{category}】经上报人核实未解决，已退回受理状态。",
        "en": "Report #{number} [{category}]: the reporter says it is not fixed; back to accepted.",
    },
    "report_status": {
        "zh": "上报#{number}（{category}）：{status}，{when}更新。",
        "en": "Report #{number} ({category}): {status}, updated {when}.",
    },
    "report_not_found": {
        "zh": "没有找到您的上报#{number}，请核对编号。",
        "en": "We could not find a report #{number} of yours. Please check the number.",
    },
    "report_needs_number": {
        "zh": "请在后面加上报编号，例如“{example}”。",
        "en": "Please add the report number, for example {example}.",
    },
    "report_wrong_state": {
        "zh": "上报#{number}当前为“{status}”，无需这样办理。",
        "en": "Report #{number} is {status}; that step does not apply now.",
    },
    "lead_only": {
        "zh": "只有本社区片长可以这样办理。",
        "en": "Only a lead of this community can do that.",
    },
    "lead_not_found": {
        "zh": "本社区没有上报#{number}，请核对编号。",
        "en": "There is no report #{number} in your community. Please check the number.",
    },
    "reject_needs_reason": {
        "zh": "请写明驳回理由，例如“驳回{number} 重复上报”。",
        "en": "Please give a reason, for example REJECT {number} duplicate.",
    },
    "lead_acknowledged": {
        "zh": "已受理#{number}，已告知上报人。",
        "en": "Report #{number} accepted; the reporter is told.",
    },
    "lead_resolved": {
        "zh": "已办结#{number}，已请上报人现场核实。",
        "en": "Report #{number} marked fixed; the reporter is asked to check on site.",
    },
    "lead_rejected": {
        "zh": "已驳回#{number}，已告知上报人。",
        "en": "Report #{number} rejected; the reporter is told.",
    },
    "report_reminder": {
        "zh": "提醒：上报#{number}【{category}】{place}已{hours}小时未受理，请回复“受理{number}”。",
        "en": "Reminder: report #{number} [{category}] {place} has waited {hours} h. "
        "Reply ACK {number} to accept it.",
    },
    "report_escalation": {
        "zh": "督办：{community}上报#{number}【{category}】{place}已{hours}小时无人受理。",
        "en": "Escalation: report #{number} [{category}] in {community}, {place}, "
        "unaccepted for {hours} h.",
    },
    # ---- patrol sessions (scheduler) ----
    "checkout_reminder": {
        "zh": "{name}，您{time}签到已超过{hours}小时，结束巡查时请回复2签退。",
        "en": "{name}, you checked in at {time}, over {hours} h ago. "
        "Text OUT (or 2) when you finish.",
    },
    "auto_closed": {
        "zh": "您{time}开始的巡查超过{max_hours}小时未签退，已自动结束，需片长确认后计入时长。",
        "en": "Your patrol from {time} ran over {max_hours} h without a check-out, so it was "
        "closed. It counts once your lead confirms it.",
    },
    "auto_closed_lead": {
        "zh": "{name}{time}开始的巡查超过{max_hours}小时未签退，已自动结束。"
        "如属实请回复“确认{name}”。",
        "en": "{name}'s patrol from {time} ran over {max_hours} h without a check-out and was "
        "closed. If it was real, reply CONFIRM {name}.",
    },
    "session_confirmed_lead": {
        "zh": "已确认{name}{time}开始的巡查，计入{duration}。",
        "en": "Confirmed {name}'s patrol from {time}: {duration} counted.",
    },
    "session_confirmed": {
        "zh": "片长已确认您{time}开始的巡查，计入{duration}。",
        "en": "Your lead confirmed your patrol from {time}: {duration} counted.",
    },
    "session_confirmed_goal": {
        "zh": "片长已确认您{time}开始的巡查，计入{duration}，今日达标+{points}分。",
        "en": "Your lead confirmed your patrol from {time}: {duration} counted. "
        "Goal reached, +{points} points.",
    },
    "confirm_not_found": {
        "zh": "没有找到{name}待确认的巡查，请核对姓名。",
        "en": "No patrol of {name} is waiting for confirmation. Please check the name.",
    },
    "confirm_needs_name": {
        "zh": "请在后面写上管家姓名，例如“确认王秀英”。",
        "en": "Please add the steward's name, for example CONFIRM Li Wei.",
    },
    # ---- leave ----
    "leave_taken": {
        "zh": "已请假{days}天，到{until}为止，好好休息！回来后可回复“销假”。",
        "en": "You are on leave for {days} days, until {until}. Rest well! "
        "Text BACK when you return.",
    },
    "leave_ask_days": {
        "zh": "请写明请假天数（1到30天），例如“请假3”。",
        "en": "Please give the number of days (1 to 30), for example LEAVE 3.",
    },
    "leave_partner": {
        "zh": "您的搭档{name}请假{days}天（到{until}），这几天请留意巡查安排。",
        "en": "Your partner {name} is on leave for {days} days (until {until}).",
    },
    "leave_lead": {
        "zh": "{name}请假{days}天，到{until}为止。",
        "en": "{name} is on leave for {days} days, until {until}.",
    },
    "leave_by_lead": {
        "zh": "片长已为您请假{days}天，到{until}为止，好好休息！",
        "en": "Your lead put you on leave for {days} days, until {until}. Rest well!",
    },
    "leave_set_for": {
        "zh": "已为{name}请假{days}天，到{until}为止。",
        "en": "{name} is on leave for {days} days, until {until}.",
    },
    "leave_name_not_found": {
        "zh": "本社区没有找到{name}，请核对姓名。",
        "en": "We could not find {name} in your community. Please check the name.",
    },
    "back_from_leave": {
        "zh": "欢迎回来！已销假，恢复巡查安排。",
        "en": "Welcome back! Your leave is over and your patrols are on again.",
    },
    "back_partner": {
        "zh": "您的搭档{name}已销假，恢复巡查。",
        "en": "Your partner {name} is back from leave.",
    },
    "not_on_leave": {
        "zh": "您目前没有请假。",
        "en": "You are not on leave.",
    },
    # ---- nudges and the absence ladder (scheduler) ----
    "nudge_both": {
        "zh": "{name}，今天{time}的巡查还没签到。出发时回复1签到；不方便可回复“请假1”。",
        "en": "{name}, today's {time} patrol has no check-in yet. Text IN when you set out, "
        "or LEAVE 1 if you cannot come.",
    },
    "nudge_partner": {
        "zh": "{name}，您的搭档{partner}已在巡查，您出发时请回复1签到。",
        "en": "{name}, your partner {partner} is already out on patrol. Text IN when you set out.",
    },
    "nudge_lead": {
        "zh": "{pair}组（{zone}）今天{time}的巡查，到现在还没有人签到。",
        "en": "Pair {pair} ({zone}): nobody has checked in for today's {time} patrol yet.",
    },
    "nudge_stopped_lead": {
        "zh": "{name}（{pair}组）已退订短信，今天还没签到，请电话联系。",
        "en": "{name} (pair {pair}) has unsubscribed from texts and has not checked in today; "
        "please call.",
    },
    "ladder_remind": {
        "zh": "{name}，您已连续{count}次排班没有巡查。一切还好吗？有困难可回复“请假”或联系片长。",
        "en": "{name}, you have missed {count} patrols in a row. Is everything all right? "
        "Text LEAVE if you need a break, or call your lead.",
    },
    "ladder_talk": {
        "zh": "{name}（{pair}组）已连续{count}次排班没有巡查，请找时间和他聊聊。",
        "en": "{name} (pair {pair}) has missed {count} patrols in a row. "
        "Please find a moment to talk with them.",
    },
    "ladder_flag": {
        "zh": "{name}（{community}{pair}组）{reason}，已列入待审名单，请街道决定保留或解除。",
        "en": "{name} ({community}, pair {pair}): {reason}. Now on the review list; "
        "please decide to keep or remove.",
    },
    "flag_reason_run": {
        "zh": "已连续{count}次排班没有巡查",
        "en": "missed {count} patrols in a row",
    },
    "flag_reason_ratio": {
        "zh": "近30天完成不到一半",
        "en": "fewer than half the patrols done in 30 days",
    },
    "vacancy": {
        "zh": "{name}已不再担任小巷管家，{pair}组（{zone}）缺一人，请安排递补。",
        "en": "{name} is no longer a steward. Pair {pair} ({zone}) needs a new member; "
        "please find one.",
    },
    # ---- Telegram: linking a private chat, locations ----
    "telegram_share_contact": {
        "zh": "您好！请点下方“分享手机号”按钮，绑定小巷管家账号。",
        "en": "Hello! Please tap 'Share my number' below to link your steward account.",
    },
    "telegram_linked": {
        "zh": "绑定成功，{name}！以后可用下方按钮签到、签退、上报。",
        "en": "Linked, {name}! Use the buttons below to check in, check out and report.",
    },
    "telegram_not_own_contact": {
        "zh": "请用下方按钮分享您自己的手机号，不能用别人的名片绑定。",
        "en": "Please share your own number with the button below; "
        "another person's contact cannot be used.",
    },
    "telegram_not_on_roster": {
        "zh": "这个手机号不在管家名册上。如需加入，请联系社区。",
        "en": "This number is not on the steward roster. Please contact your community to join.",
    },
    "sms_undelivered": {
        "zh": "短信未能送达{name}（{phone}），请电话联系：{body}",
        "en": "An SMS could not reach {name} ({phone}); please call: {body}",
    },
    "location_attached": {
        "zh": "位置已附到上报#{number}，谢谢！",
        "en": "Location added to report #{number}. Thank you!",
    },
    "location_needs_report": {
        "zh": "收到位置。请先上报问题（回复3），再发送位置。",
        "en": "Got your location. Please file a report first (reply 3), then send the location.",
    },
    # ---- a lead's TODAY (the parts are joined, then fitted to two segments) ----
    "today_head": {
        "zh": "{scope}{date}{time}：",
        "en": "{scope} {date} {time}: ",
    },
    "today_out": {"zh": "巡查中{count}组{codes}", "en": "on patrol {count}{codes}"},
    "today_done": {"zh": "已达标{count}组{codes}", "en": "done {count}{codes}"},
    "today_missing": {"zh": "未出巡{count}组{codes}", "en": "not out {count}{codes}"},
    "today_partial": {"zh": "未满时长{count}组{codes}", "en": "short of goal {count}{codes}"},
    "today_off": {"zh": "今日休息{count}组", "en": "off today {count}"},
    "today_no_pairs": {"zh": "今日没有排班的组。", "en": "no pairs today."},
    "not_yet_available": {
        "zh": "此功能暂未开通短信办理，请联系片长。{menu}",
        "en": "This is not available by text yet; please contact your lead. {menu}",
    },
}

_DURATION = {
    "zh": ("{h}小时{m}分", "{h}小时", "{m}分钟"),
    "en": ("{h} h {m} min", "{h} h", "{m} min"),
}


REPORT_STATUS = {
    "new": {"zh": "待受理", "en": "waiting to be accepted"},
    "acknowledged": {"zh": "已受理，处理中", "en": "accepted, being handled"},
    "resolved": {"zh": "已处理，待您核实", "en": "fixed, waiting for your check"},
    "verified": {"zh": "已核实", "en": "checked"},
    "closed": {"zh": "已结案", "en": "closed"},
    "closed_unverified": {"zh": "已结案（未核实）", "en": "closed (not checked)"},
    "rejected": {"zh": "未受理", "en": "not accepted"},
    "withdrawn": {"zh": "已撤回", "en": "withdrawn"},
}


def status_name(status: str, language: str) -> str:
    """Name a report status the way a reporter would understand it."""
    names = REPORT_STATUS.get(status, {"zh": status, "en": status})
    return names.get(language) or names["zh"]


def mask_phone(phone: str) -> str:
    """Hide the middle of a number for messages others read (138****5678)."""
    digits = phone[3:] if phone.startswith("+86") else phone.lstrip("+")
    if len(digits) < 8:
        return "****"
    return f"{digits[:3]}****{digits[-4:]}"


def clip(text: str, limit: int) -> str:
    """Shorten free text so the message around it stays within its segments."""
    text = " ".join(text.split())
    # Three dots, not "…": one non-GSM character would make an English SMS cost double.
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


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
