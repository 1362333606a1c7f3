"""The seeded purposes and their first notices (zh-hans and en).

Plain data plus one idempotent function that takes the model classes, so the data migration
(historical models) and the demo/test seeding (real models) share it.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

# Policy version 1 of every seeded purpose is dated here, so reseeding never moves it.
SEED_PUBLISHED_AT = datetime(2026, 1, 1, tzinfo=UTC)

# code: (name_en, name_zh, description_en, description_zh, legal_basis, jurisdictions,
#        data_categories, channels, retention_days, recipients, separate_consent)
PURPOSES: dict[str, dict] = {
    "analytics": {
        "name_en": "Analytics",
        "name_zh": "统计分析",
        "description_en": "We count visits and purchases to improve our shops. Results are statistics with noise "
        "added; nobody is singled out.",
        "description_zh": "我们统计访问和购买情况以改进门店和服务。结果为加入噪声的统计数据，不会识别到个人。",
        "legal_basis": "consent",
        "jurisdictions": ["pipl", "gdpr"],
        "data_categories": ["transaction", "survey", "location"],
        "channels": [],
        "retention_days": 730,
        "recipients": [],
        "separate_consent": "",
    },
    "personalisation": {
        "name_en": "Personalised recommendations",
        "name_zh": "个性化推荐",
        "description_en": "We use what you bought and viewed to recommend products to you. You can refuse at any "
        "time and still see non-personalised offers.",
        "description_zh": "我们根据您的购买和浏览记录为您推荐商品。您可以随时拒绝，拒绝后仍可看到非个性化内容。",
        "legal_basis": "consent",
        "jurisdictions": ["pipl", "gdpr"],
        "data_categories": ["transaction", "demographic", "loyalty"],
        "channels": ["web", "app", "mini_program"],
        "retention_days": 365,
        "recipients": [],
        "separate_consent": "",
    },
    "marketing_sms": {
        "name_en": "Marketing by SMS",
        "name_zh": "短信营销",
        "description_en": "We send you offers and news by text message to your mobile number.",
        "description_zh": "我们通过短信向您的手机号码发送优惠和新闻。",
        "legal_basis": "consent",
        "jurisdictions": ["pipl", "gdpr"],
        "data_categories": ["contact", "identity"],
        "channels": ["sms"],
        "retention_days": 365,
        "recipients": ["SMS gateway (processor)"],
        "separate_consent": "",
    },
    "marketing_email": {
        "name_en": "Marketing by e-mail",
        "name_zh": "电子邮件营销",
        "description_en": "We send you offers and news by e-mail.",
        "description_zh": "我们通过电子邮件向您发送优惠和新闻。",
        "legal_basis": "consent",
        "jurisdictions": ["pipl", "gdpr"],
        "data_categories": ["contact", "identity"],
        "channels": ["email"],
        "retention_days": 365,
        "recipients": ["E-mail service provider (processor)"],
        "separate_consent": "",
    },
    "marketing_wechat": {
        "name_en": "Marketing on WeChat",
        "name_zh": "微信营销",
        "description_en": "We send you offers and news through our WeChat official account and mini-program.",
        "description_zh": "我们通过微信公众号和小程序向您发送优惠和新闻。",
        "legal_basis": "consent",
        "jurisdictions": ["pipl"],
        "data_categories": ["contact", "identity"],
        "channels": ["wechat"],
        "retention_days": 365,
        "recipients": ["Tencent WeChat (platform)"],
        "separate_consent": "",
    },
    "marketing_phone": {
        "name_en": "Marketing by phone call",
        "name_zh": "电话营销",
        "description_en": "Our call centre may call you about offers.",
        "description_zh": "我们的呼叫中心可能致电向您介绍优惠。",
        "legal_basis": "consent",
        "jurisdictions": ["pipl", "gdpr"],
        "data_categories": ["contact", "identity"],
        "channels": ["phone"],
        "retention_days": 365,
        "recipients": ["Call centre (processor)"],
        "separate_consent": "",
    },
    "third_party_sharing": {
        "name_en": "Sharing with partner brands",
        "name_zh": "向合作品牌提供个人信息",
        "description_en": "We give your name and contact details to our partner brands so that they can send you "
        "their own offers. They become responsible for your data.",
        "description_zh": "我们将您的姓名和联系方式提供给合作品牌，由其向您发送优惠。合作品牌将作为个人信息处理者"
        "对您的信息负责。",
        "legal_basis": "consent",
        "jurisdictions": ["pipl", "gdpr"],
        "data_categories": ["contact", "identity"],
        "channels": [],
        "retention_days": 365,
        "recipients": ["Partner brands (independent controllers)"],
        "separate_consent": "provision",
    },
    "cross_border_transfer": {
        "name_en": "Transfer outside China",
        "name_zh": "向境外提供个人信息",
        "description_en": "We store a copy of your profile with our group's headquarters in the EU for customer "
        "service. You can exercise your rights there through this portal.",
        "description_zh": "为提供客户服务，我们将您的资料副本提供给位于欧盟的集团总部。您可以通过本页面向其行使您的权利。",
        "legal_basis": "consent",
        "jurisdictions": ["pipl"],
        "data_categories": ["contact", "identity", "transaction"],
        "channels": [],
        "retention_days": 730,
        "recipients": ["Group headquarters (EU)"],
        "separate_consent": "cross_border",
    },
}


def notice_texts(code: str, spec: dict) -> dict[str, str]:
    """The plain-language notice of version 1 in both languages."""
    recipients = "; ".join(spec["recipients"])
    en = (
        f"{spec['name_en']}. {spec['description_en']} "
        f"Kept for {spec['retention_days']} days. Recipients: {recipients or 'none'}. "
        "You can withdraw at any time in this portal; withdrawal is as easy as giving consent."
    )
    zh = (
        f"{spec['name_zh']}。{spec['description_zh']}"
        f"保存期限为{spec['retention_days']}天。接收方：{recipients or '无'}。"
        "您可以随时在本页面撤回同意，撤回与同意同样方便。"
    )
    return {"en": en, "zh-hans": zh}


def seed_purposes(purpose_model, policy_model) -> tuple[int, int]:
    """Create the seeded purposes and their version-1 notices if missing. Returns (purposes,
    policy versions) created. Existing rows are left alone: an operator may have edited them."""
    created_purposes = created_versions = 0
    for code, spec in PURPOSES.items():
        purpose, created = purpose_model.objects.get_or_create(code=code, defaults=dict(spec))
        created_purposes += created
        for language, text in notice_texts(code, spec).items():
            _, created = policy_model.objects.get_or_create(
                purpose=purpose,
                version=1,
                language=language,
                defaults={
                    "text": text,
                    "text_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                    "published_at": SEED_PUBLISHED_AT,
                    "material": True,
                },
            )
            created_versions += created
    return created_purposes, created_versions
