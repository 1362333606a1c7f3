"""Demo steps for the consent area: the purpose registry, and consent for demo customers."""

from __future__ import annotations

import random

from cdp.actor import Actor
from cdp.models import Profile, ProfileStatus
from consent.services import consent_import_grants, consent_seed_purposes

# Share of demo customers who granted each purpose (a plausible, varied picture).
DEMO_GRANT_RATES = {
    "analytics": 0.7,
    "personalisation": 0.5,
    "marketing_sms": 0.4,
    "marketing_email": 0.45,
    "marketing_wechat": 0.35,
    "marketing_phone": 0.1,
    "third_party_sharing": 0.08,
    "cross_border_transfer": 0.05,
}


def seed_consent_purposes(**_: object) -> str:
    return consent_seed_purposes()


def seed_demo_consents(*, seed: int = 20261123, **_: object) -> str:
    """Grant purposes to demo customers who have no consent yet (idempotent), as if collected
    by the web shop's cookie banner. Minors in the demo data are skipped, never granted."""
    subjects = list(
        Profile.objects.filter(status=ProfileStatus.ACTIVE, consent_states__isnull=True)
        .order_by("created_at", "id")
        .values_list("id", flat=True)
    )
    # Draws are seeded per subject, so a customer who drew no grant draws none again on a re-run:
    # the step is idempotent, not just "grants to whoever still has none".
    grants = []
    for subject in subjects:
        rng = random.Random(f"{seed}:{subject}")
        grants += [(subject, code) for code, rate in DEMO_GRANT_RATES.items() if rng.random() < rate]
    if not grants:
        return "no customers without consent"
    counts = consent_import_grants(
        actor=Actor.system("seed_demo"), grants=grants, method="cookie_banner", source="web-shop"
    )
    return ", ".join(f"{k} {v}" for k, v in counts.items())
