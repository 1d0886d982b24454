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
        # Each question of the application is one short SMS (SPEC §9).
        "apply_ask_name",
        "apply_ask_community",
        "apply_ask_birth",
        "apply_ask_party",
        "apply_ask_experience",
        "apply_ask_lane",
        "apply_received",
        "quit_confirm",
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
        "zh": "您好，本号码未登记为小巷管家。如想加入，请回复“报名”。",
        "en": "Hello, this number is not registered with Alley Steward. To join, reply APPLY.",
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
        "zh": "{name}已不再担任小巷管家，{pair}组（{zone}）缺一人，请安排递补。{candidates}",
        "en": "{name} is no longer a steward. Pair {pair} ({zone}) needs a new member; "
        "please find one.{candidates}",
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
    # ---- recruitment (SPEC §9): each question of the application fits one segment ----
    "apply_ask_name": {
        "zh": "欢迎报名小巷管家！请回复您的姓名。",
        "en": "Welcome! To apply as an alley steward, please reply with your name.",
    },
    "apply_ask_community": {
        "zh": "您住在或工作在哪个社区？请回复社区名称。",
        "en": "Which community do you live or work in? Please reply with its name.",
    },
    "apply_ask_community_menu": {
        "zh": "您住在或工作在哪个社区？请回复序号：{menu}",
        "en": "Which community do you live or work in? Reply with its number: {menu}",
    },
    "apply_ask_birth": {
        "zh": "请回复您的出生年月，例如1965年3月。",
        "en": "Please reply with your year and month of birth, for example 1965-03.",
    },
    "apply_ask_party": {
        "zh": "您是党员吗？请回复“是”或“否”。",
        "en": "Are you a Party member? Please reply YES or NO.",
    },
    "apply_ask_experience": {
        "zh": "做过志愿服务吗？请用一句话说说，没有请回复“无”。",
        "en": "Any volunteering experience? Tell us in one line, or reply NONE.",
    },
    "apply_ask_lane": {
        "zh": "您想认领哪条街巷？请回复街巷名，不确定请回复“无”。",
        "en": "Which lane would you like to look after? Reply with its name, or NONE if unsure.",
    },
    "apply_again": {
        "zh": "没看懂，{question}",
        "en": "Sorry, we did not get that. {question}",
    },
    "apply_help": {
        "zh": "您正在报名，回复“退订”可停止。{question}",
        "en": "You are applying to be a steward; reply STOP to end. {question}",
    },
    "apply_resume": {
        "zh": "欢迎回来，接着上次报名。{question}",
        "en": "Welcome back; let us go on where you stopped. {question}",
    },
    "apply_paused": {
        "zh": "您的报名已暂停，回复“报名”可从中断处继续。",
        "en": "Your application is paused. Reply APPLY to go on where you stopped.",
    },
    "apply_under_18": {
        "zh": "谢谢您的热心！小巷管家需年满18周岁，欢迎成年后再来报名。本次信息未保存。",
        "en": "Thank you for wanting to help! Stewards must be 18 or older; you are welcome to "
        "apply then. Nothing you sent was kept.",
    },
    "apply_received": {
        "zh": "报名已收到，谢谢！将转街道办审核，结果会短信告诉您。",
        "en": "Thank you, your application is in. It goes to the street office, "
        "and we will text you the result.",
    },
    "apply_pending": {
        "zh": "您的报名正在审核中，结果会短信告诉您，请耐心等候。",
        "en": "Your application is being reviewed; we will text you the result.",
    },
    "apply_already_serving": {
        "zh": "您已是小巷管家，无需报名。{menu}",
        "en": "You are already an alley steward. {menu}",
    },
    "application_lead": {
        "zh": "新报名#{number}：{name}，{age}岁{marks}，{community}，{phone}。"
        "经历：{experience}；意向街巷：{lane}。待街道审核。",
        "en": "New application #{number}: {name}, {age}{marks}, {community}, {phone}. "
        "Experience: {experience}; lane: {lane}. For the street office to review.",
    },
    "mark_party": {"zh": "，党员", "en": ", Party member"},
    "mark_experienced": {"zh": "，有经验", "en": ", experienced"},
    "none_given": {"zh": "无", "en": "none"},
    # ---- screening and the pledge (承诺书) ----
    "pledge": {
        "zh": "恭喜通过审核，请加入{pair}组（{zone}）！承诺书要点：义务服务不取报酬，"
        "遵守法律和管家制度，巡查注意安全，同意活动照片用于宣传。同意请回复“同意”。",
        "en": "Welcome aboard: pair {pair} ({zone}). The pledge: serve without pay, follow the "
        "law and the programme's rules, stay safe on patrol, and agree to programme photos. "
        "Reply AGREE to accept.",
    },
    "pledge_reminder": {
        "zh": "您的报名已通过。同意承诺书请回复“同意”，有疑问请联系社区。",
        "en": "Your application was approved. Reply AGREE to accept the pledge; "
        "questions: please call your community.",
    },
    "apply_declined": {
        "zh": "谢谢您报名小巷管家！这次未能安排：{reason}。欢迎继续关心社区事务。",
        "en": "Thank you for applying to be an alley steward. We cannot place you this time: "
        "{reason}. Thank you for caring about your community.",
    },
    "joined": {
        "zh": "欢迎加入小巷管家，{name}！您在{pair}组（{zone}）。回复0查看菜单。",
        "en": "Welcome to Alley Steward, {name}! You are in pair {pair} ({zone}). "
        "Reply HELP for the menu.",
    },
    "joined_partner": {
        "zh": "新搭档{name}（{phone}）已加入您的{pair}组，请约好一起巡查。",
        "en": "{name} ({phone}) has joined your pair {pair}. Please agree when to patrol together.",
    },
    "joined_lead": {
        "zh": "{name}已签署承诺书，加入{pair}组（{zone}）。",
        "en": "{name} accepted the pledge and joined pair {pair} ({zone}).",
    },
    "pledge_pair_full": {
        "zh": "谢谢您同意承诺书！{pair}组刚刚已满员，社区会另行安排并联系您。",
        "en": "Thank you for accepting! Pair {pair} has just been filled; "
        "your community will find you another place.",
    },
    "pledge_pair_full_lead": {
        "zh": "{name}同意了承诺书，但{pair}组已满员，请为报名#{number}另选一组。",
        "en": "{name} accepted the pledge but pair {pair} is full; "
        "please approve application #{number} into another pair.",
    },
    "pledge_lapsed_lead": {
        "zh": "报名#{number}{name}批准7天未回复承诺书，已失效，{pair}组仍缺一人。{candidates}",
        "en": "Application #{number} ({name}): no answer to the pledge in 7 days, so it lapsed. "
        "Pair {pair} still needs a member.{candidates}",
    },
    "vacancy_candidates": {"zh": "候选：{candidates}", "en": " Candidates: {candidates}"},
    # ---- resigning (退出) ----
    "quit_confirm": {
        "zh": "确定要退出小巷管家服务吗？确定请回复1，回复其他内容取消。",
        "en": "Do you want to end your service as a steward? Reply 1 to confirm; "
        "anything else cancels.",
    },
    "quit_done": {
        "zh": "已为您办理退出，感谢您的付出！今后不再给您发短信。",
        "en": "Your service has ended. Thank you for all you did! You will get no more texts.",
    },
    "quit_cancelled": {
        "zh": "好的，已取消退出，您仍是小巷管家，谢谢！",
        "en": "All right, nothing changed: you are still an alley steward. Thank you!",
    },
    "quit_partner": {
        "zh": "您的搭档{name}已退出服务，社区会尽快安排新搭档。",
        "en": "Your partner {name} has left the programme; the community will find a new partner.",
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
