"""The portal's words in English and Simplified Chinese.

Template-level dictionaries rather than gettext catalogues: the portal needs no compile step
(no msgfmt on the build machine), and a missing key fails a test instead of silently showing
English. Purpose names and notices come from the registry (Purpose, PolicyVersion).
"""

from __future__ import annotations

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Your privacy choices",
        "intro": "Here you can see what we hold about you and decide, purpose by purpose, what we may do with it. "
        "Changes take effect immediately.",
        "language": "Language",
        "switch_language": "Change language",
        "categories_heading": "Data we hold about you",
        "categories_intro": "The kinds of data, not the values. Ask for a copy to see the values.",
        "categories_none": "We hold no personal data about you beyond this record of your choices.",
        "purposes_heading": "How we use your data",
        "notice": "Notice",
        "notice_version": "Notice version",
        "state": "Current state",
        "history": "History",
        "history_none": "No decisions recorded yet.",
        "when": "When",
        "decision": "Decision",
        "how": "How",
        "grant": "Give consent",
        "withdraw": "Withdraw consent",
        "grant_again": "Review and consent again",
        "not_consent_based": "This use does not rest on your consent. You can object to it by asking for restriction.",
        "separate_consent": "Needs your separate consent.",
        "requests_heading": "Your requests",
        "requests_intro": "You can ask for a copy of your data or for its erasure. We answer by the date shown.",
        "request_copy": "Request a copy of my data",
        "request_erasure": "Request erasure of my data",
        "requests_none": "You have made no requests.",
        "request_type": "Request",
        "request_status": "Status",
        "request_received": "Received",
        "request_due": "Answer due by",
        "sign_out": "End session",
        "saved_granted": "Saved: you gave consent for “{name}”.",
        "saved_withdrawn": "Saved: you withdrew consent for “{name}”.",
        "guardian_required": "A parent or guardian must give this consent for you.",
        "change_failed": "We could not save this change. Please try again.",
        "request_saved": "Your request was received. We will answer by {due}.",
        "refused_title": "This link cannot be used",
        "refused_used": "This link has already been used. For your security each link works only once.",
        "refused_expired": "This link has expired.",
        "refused_invalid": "This link is not valid.",
        "refused_session": "Your session has ended.",
        "refused_help": "Please ask us for a new link through the channel where you received this one.",
        "signed_out": "You have ended your session. You can close this window.",
        "skip": "Skip to content",
        "channels": "Channels",
        "all_channels": "all channels",
    },
    "zh-hans": {
        "title": "您的隐私选择",
        "intro": "您可以在此查看我们持有的您的信息，并按用途逐项决定我们可以如何使用。更改立即生效。",
        "language": "语言",
        "switch_language": "切换语言",
        "categories_heading": "我们持有的您的信息",
        "categories_intro": "此处仅显示信息类别，不显示具体内容。如需查看具体内容，请申请获取副本。",
        "categories_none": "除您的选择记录外，我们未持有您的其他个人信息。",
        "purposes_heading": "我们如何使用您的信息",
        "notice": "告知内容",
        "notice_version": "告知版本",
        "state": "当前状态",
        "history": "历史记录",
        "history_none": "尚无记录。",
        "when": "时间",
        "decision": "决定",
        "how": "方式",
        "grant": "同意",
        "withdraw": "撤回同意",
        "grant_again": "查看并重新同意",
        "not_consent_based": "此项处理不以您的同意为依据。您可以申请限制处理以表示反对。",
        "separate_consent": "需要您的单独同意。",
        "requests_heading": "您的申请",
        "requests_intro": "您可以申请获取个人信息副本或删除个人信息。我们将在所示日期前答复。",
        "request_copy": "申请获取我的信息副本",
        "request_erasure": "申请删除我的信息",
        "requests_none": "您尚未提出申请。",
        "request_type": "申请",
        "request_status": "状态",
        "request_received": "收到时间",
        "request_due": "答复期限",
        "sign_out": "结束会话",
        "saved_granted": "已保存：您已同意“{name}”。",
        "saved_withdrawn": "已保存：您已撤回对“{name}”的同意。",
        "guardian_required": "此项同意须由您的父母或其他监护人作出。",
        "change_failed": "无法保存此更改，请重试。",
        "request_saved": "我们已收到您的申请，将于{due}前答复。",
        "refused_title": "此链接无法使用",
        "refused_used": "此链接已被使用。为保护您的安全，每个链接仅可使用一次。",
        "refused_expired": "此链接已过期。",
        "refused_invalid": "此链接无效。",
        "refused_session": "您的会话已结束。",
        "refused_help": "请通过您收到此链接的渠道向我们申请新链接。",
        "signed_out": "您已结束会话，可以关闭此窗口。",
        "skip": "跳到主要内容",
        "channels": "渠道",
        "all_channels": "所有渠道",
    },
}

STATES: dict[str, dict[str, str]] = {
    "en": {
        "granted": "Consent given",
        "withdrawn": "Consent withdrawn",
        "expired": "Consent expired",
        "stale": "Notice changed: consent needed again",
        "not_set": "No consent given",
        "not_required": "Not based on consent",
    },
    "zh-hans": {
        "granted": "已同意",
        "withdrawn": "已撤回同意",
        "expired": "同意已过期",
        "stale": "告知内容已变更，需要重新同意",
        "not_set": "未同意",
        "not_required": "不以同意为依据",
    },
}

EVENTS: dict[str, dict[str, str]] = {
    "en": {
        "granted": "Consent given",
        "withdrawn": "Consent withdrawn",
        "expired": "Consent expired",
        "guardian_granted": "Consent given by a guardian",
    },
    "zh-hans": {"granted": "同意", "withdrawn": "撤回同意", "expired": "同意过期", "guardian_granted": "监护人同意"},
}

METHODS: dict[str, dict[str, str]] = {
    "en": {
        "portal_toggle": "This page",
        "cookie_banner": "Website cookie banner",
        "pos_signature": "Signature in store",
        "api": "Our systems",
        "staff": "Our staff, on your instruction",
        "system": "Automatically (expiry)",
    },
    "zh-hans": {
        "portal_toggle": "本页面",
        "cookie_banner": "网站 Cookie 横幅",
        "pos_signature": "门店签字",
        "api": "我们的系统",
        "staff": "工作人员按您的指示",
        "system": "自动（到期）",
    },
}

CATEGORIES: dict[str, dict[str, str]] = {
    "en": {
        "identity": "Identity (such as your name)",
        "demographic": "Demographics (such as date of birth, gender)",
        "contact": "Contact details (such as address, phone, e-mail)",
        "location": "Location (such as your city)",
        "loyalty": "Membership and loyalty",
        "health": "Health information (sensitive)",
        "transaction": "Purchases and visits",
        "survey": "Survey answers and ratings",
        "events": "Activity records (visits, purchases, messages)",
        "consent": "Your consent choices",
        "other": "Other information",
    },
    "zh-hans": {
        "identity": "身份信息（如姓名）",
        "demographic": "人口统计信息（如出生日期、性别）",
        "contact": "联系方式（如地址、电话、电子邮件）",
        "location": "位置信息（如所在城市）",
        "loyalty": "会员与积分",
        "health": "健康信息（敏感个人信息）",
        "transaction": "购买与到访记录",
        "survey": "问卷回答与评分",
        "events": "活动记录（访问、购买、消息）",
        "consent": "您的同意选择",
        "other": "其他信息",
    },
}

REQUEST_TYPES: dict[str, dict[str, str]] = {
    "en": {
        "access": "Copy of my data",
        "portability": "Portable copy of my data",
        "rectification": "Correction",
        "erasure": "Erasure",
        "restriction": "Restriction",
        "objection": "Objection",
    },
    "zh-hans": {
        "access": "获取信息副本",
        "portability": "获取可转移副本",
        "rectification": "更正",
        "erasure": "删除",
        "restriction": "限制处理",
        "objection": "反对处理",
    },
}

REQUEST_STATUSES: dict[str, dict[str, str]] = {
    "en": {
        "received": "Received",
        "verified": "Verified",
        "in_progress": "In progress",
        "completed": "Completed",
        "rejected": "Rejected",
    },
    "zh-hans": {
        "received": "已收到",
        "verified": "已核验",
        "in_progress": "处理中",
        "completed": "已完成",
        "rejected": "已拒绝",
    },
}


def language_of(code: str | None) -> str:
    """The portal language for a Django language code (zh, zh-cn, zh-hans -> zh-hans)."""
    code = (code or "en").lower()
    return "zh-hans" if code.startswith("zh") else "en"
