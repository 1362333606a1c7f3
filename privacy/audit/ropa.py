"""Records of processing activities (GDPR Art. 30; PIPL Art. 55-56 impact-assessment records).

Generated, never hand-kept: from the purpose registry (legal basis, data categories, retention,
recipients, separate consent), the trait registry (which traits fall in each category, which are
sensitive) and the sources (which channels feed the data). A purpose that changes changes the
record the next time it is exported.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from django.utils import timezone

from cdp.actor import Actor, Role
from cdp.models import Source, TraitDefinition
from consent.models import Purpose
from privacy.audit.actions import AuditAction
from privacy.audit.writer import audit_record

ROPA_ROLES = (Role.COMPLIANCE, Role.ADMIN)
ROPA_FORMATS = ("json", "csv")
CSV_COLUMNS = (
    "purpose",
    "name_en",
    "name_zh",
    "description_en",
    "legal_basis",
    "jurisdictions",
    "data_categories",
    "traits",
    "sensitive_traits",
    "involves_sensitive_data",
    "separate_consent",
    "channels",
    "sources",
    "recipients",
    "retention_days",
    "active",
)


def _records() -> list[dict[str, Any]]:
    traits_by_category: dict[str, list[TraitDefinition]] = {}
    for trait in TraitDefinition.objects.order_by("kind", "key"):
        traits_by_category.setdefault(trait.data_category, []).append(trait)
    sources = list(Source.objects.order_by("name").values("name", "channel"))
    records = []
    for purpose in Purpose.objects.order_by("code"):
        categories = list(purpose.data_categories or [])
        traits = [t for c in categories for t in traits_by_category.get(c, [])]
        channels = list(purpose.channels or [])
        feeding = [s for s in sources if not channels or s["channel"] in channels]
        records.append(
            {
                "purpose": purpose.code,
                "name_en": purpose.name_en,
                "name_zh": purpose.name_zh,
                "description_en": purpose.description_en,
                "legal_basis": purpose.legal_basis,
                "legal_basis_label": purpose.get_legal_basis_display(),
                "jurisdictions": list(purpose.jurisdictions or []),
                "data_categories": categories,
                "traits": [f"{t.kind}:{t.key}" for t in traits],
                "sensitive_traits": [f"{t.kind}:{t.key}" for t in traits if t.sensitive],
                "involves_sensitive_data": any(t.sensitive for t in traits),
                "separate_consent": purpose.separate_consent,
                "channels": channels or sorted({s["channel"] for s in sources}),
                "sources": [s["name"] for s in feeding],
                "recipients": list(purpose.recipients or []),
                "retention_days": purpose.retention_days,
                "active": purpose.active,
            }
        )
    return records


def records_of_processing(*, actor: Actor, fmt: str = "json") -> dict[str, Any]:
    """The records of processing, one per purpose; audited (`ropa.export`)."""
    actor.require_role(*ROPA_ROLES)
    if fmt not in ROPA_FORMATS:
        raise ValueError(f"format must be one of: {', '.join(ROPA_FORMATS)}")
    records = _records()
    audit_record(
        actor=actor,
        action=AuditAction.ROPA_EXPORT,
        object_type="records_of_processing",
        details={"format": fmt, "purposes": len(records)},
    )
    return {"generated_at": timezone.now().isoformat(), "records": records}


def ropa_csv(records: list[dict[str, Any]]) -> str:
    """One CSV row per purpose; lists joined with '; '."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for record in records:
        writer.writerow(
            ["; ".join(map(str, v)) if isinstance(v, list) else v for v in (record[c] for c in CSV_COLUMNS)]
        )
    return out.getvalue()
