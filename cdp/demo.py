"""Demo data steps for `seed_demo`. Each step is idempotent and returns a one-line summary.

Areas append their own step to DEMO_STEPS (order matters: registry before customers, customers
before segments).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from django.conf import settings

from cdp.models import Channel, Source, TraitDefinition

DemoStep = Callable[..., str]

DEMO_SOURCES = [
    ("web-shop", Channel.WEB),
    ("mobile-app", Channel.APP),
    ("wechat-mini", Channel.MINI_PROGRAM),
    ("store-pos", Channel.POS),
    ("crm", Channel.CRM),
    ("call-center", Channel.CALL_CENTER),
]

# key, kind, type, personal, sensitive, filterable, bounds, enum, category
DEMO_TRAITS = [
    ("name", "trait", "string", True, False, False, None, [], "identity"),
    ("birth_date", "trait", "date", True, False, False, None, [], "demographic"),
    ("address", "trait", "string", True, False, False, None, [], "contact"),
    ("gender", "trait", "enum", True, False, False, None, ["female", "male", "other", "unknown"], "demographic"),
    (
        "city",
        "trait",
        "enum",
        False,
        False,
        True,
        None,
        ["Shanghai", "Beijing", "Shenzhen", "Guangzhou", "Chengdu", "Hangzhou", "Berlin", "Paris", "Other"],
        "location",
    ),
    ("city_tier", "trait", "enum", False, False, True, None, ["1", "2", "3", "4"], "location"),
    ("membership_level", "trait", "enum", False, False, True, None, ["none", "silver", "gold", "platinum"], "loyalty"),
    ("health_notes", "trait", "string", True, True, False, None, [], "health"),
    ("amount", "property", "decimal", False, False, True, (0, 5000), [], "transaction"),
    ("score", "property", "integer", False, False, True, (0, 10), [], "survey"),
    ("csat", "property", "integer", False, False, True, (1, 5), [], "survey"),
    (
        "product_category",
        "property",
        "enum",
        False,
        False,
        True,
        None,
        ["apparel", "beauty", "electronics", "home", "food"],
        "transaction",
    ),
    ("store_id", "property", "string", False, False, True, None, [], "transaction"),
]


def seed_sources(**_: object) -> str:
    created = 0
    for name, channel in DEMO_SOURCES:
        created += Source.objects.get_or_create(name=name, defaults={"channel": channel})[1]
    return f"{created} sources created, {len(DEMO_SOURCES) - created} already there"


def seed_traits(**_: object) -> str:
    created = 0
    for key, kind, dtype, personal, sensitive, filterable, bounds, enum, category in DEMO_TRAITS:
        _, was_created = TraitDefinition.objects.update_or_create(
            kind=kind,
            key=key,
            defaults={
                "data_type": dtype,
                "personal": personal,
                "sensitive": sensitive,
                "filterable": filterable,
                "lower_bound": bounds[0] if bounds else None,
                "upper_bound": bounds[1] if bounds else None,
                "enum_values": enum,
                "data_category": category,
            },
        )
        created += was_created
    return f"{created} trait definitions created, {len(DEMO_TRAITS) - created} updated"


def seed_demo_keys(**_: object) -> str:
    """One key per role, written to var/demo-keys.txt (git-ignored) since keys show only once."""
    from api.keys import api_key_create
    from api.models import ApiKey
    from cdp.actor import Actor, Role

    path = Path(settings.VAR_DIR) / "demo-keys.txt"
    if path.exists() and ApiKey.objects.filter(name__startswith="demo-").exists():
        return f"demo keys already exist (see {path})"
    lines = []
    for role in (Role.ADMIN, Role.STEWARD, Role.COMPLIANCE, Role.MARKETING, Role.ANALYST, Role.SOURCE):
        created = api_key_create(
            actor=Actor.system("seed_demo"),
            name=f"demo-{role}",
            role=role,
            source_name="web-shop" if role == Role.SOURCE else "",
        )
        lines.append(f"{role}\t{created.plaintext}")
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return f"API keys for each role written to {path}"


def seed_customers(**kwargs: object) -> str:
    """Synthetic customers through the real ingestion pipeline (cdp.synthetic)."""
    from cdp.synthetic import seed_customers as run

    return run(**kwargs)  # type: ignore[arg-type]


DEMO_STEPS: list[tuple[str, DemoStep]] = [
    ("sources", seed_sources),
    ("trait registry", seed_traits),
    ("api keys", seed_demo_keys),
    ("customers", seed_customers),
]

from consent.demo import seed_consent_purposes, seed_demo_consents  # noqa: E402 - appended by the consent area

DEMO_STEPS += [("consent purposes", seed_consent_purposes), ("demo consents", seed_demo_consents)]

def seed_audit_checkpoint(**_: object) -> str:
    """Sign the audit chain's head so the compliance page and exports start from a checkpoint."""
    from cdp.actor import Actor
    from privacy.audit.checkpoints import checkpoint_create

    checkpoint = checkpoint_create(actor=Actor.system("seed_demo"))
    return f"audit checkpoint signed at seq {checkpoint.seq}" if checkpoint else "audit head already signed"


DEMO_STEPS.append(("audit checkpoint", seed_audit_checkpoint))


# --- segments (issue 8) ---
DEMO_SEGMENTS = [
    (
        "Bought in the last 30 days in Shanghai",
        {
            "all": [
                {"type": "trait", "key": "city", "op": "eq", "value": "Shanghai"},
                {"type": "event", "name": "purchase", "within_days": 30},
            ]
        },
    ),
    (
        "Detractors who contacted the call centre",
        {"all": [{"type": "nps_band", "value": "detractor"}, {"type": "channel", "op": "eq", "value": "call_center"}]},
    ),
    (
        "Loyal WeChat members",
        {
            "all": [
                {"type": "journey_stage", "op": "eq", "value": "loyalty"},
                {"type": "channel", "op": "eq", "value": "mini_program"},
                {"type": "trait", "key": "membership_level", "op": "in", "value": ["silver", "gold", "platinum"]},
            ]
        },
    ),
]


def seed_segments(**_: object) -> str:
    """The demo segments, materialised at once (in SQL) so the UI and API have members to export."""
    from cdp.actor import Actor, ActorKind, Role
    from cdp.models import Segment
    from cdp.services.segments import segment_create, segment_materialise

    actor = Actor(kind=ActorKind.SYSTEM, actor_id="task:seed_demo", role=Role.MARKETING, name="seed_demo")
    created = 0
    for name, definition in DEMO_SEGMENTS:
        segment = Segment.objects.filter(name=name).first()
        if segment is None:
            segment = segment_create(actor=actor, name=name, definition=definition)
            created += 1
        segment_materialise(segment_id=segment.id, actor=actor)
    return f"{created} segments created, {len(DEMO_SEGMENTS)} materialised"


DEMO_STEPS.append(("segments", seed_segments))


def seed_recipients(**kwargs: object) -> str:
    """issue 10: the recipients register, so demo exports name a registered recipient."""
    from privacy.compliance.services import seed_recipients as seed

    return seed(**kwargs)


DEMO_STEPS.append(("recipients register", seed_recipients))
