"""Ingestion: validate a batch of messages, resolve identities, seal traits, store events, audit.

Why validate-all-then-write: one bad message must never reject its neighbours nor half-write.
Every message is first checked in memory (shape, type, identifiers normalised and blind-indexed,
traits and properties against the registry); only the valid ones reach the database, and they
are written by one `BatchResolver` inside one transaction that ends with one `ingest.batch`
audit entry (plus one `profile.merge` per merge). A crash mid-batch therefore loses nothing
that was acknowledged: either the batch committed or the client retries it, and idempotency by
(source, message_id) makes the retry safe.

Message types are a dispatch table (`MESSAGE_TYPES`): a new type adds one preparer function.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import OperationalError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from cdp.actor import Actor, PermissionDenied, Role
from cdp.models import Channel, Event, Profile, Source, TraitDefinition
from identity.graph import BatchResolver, PreparedId, PreparedMessage, Trait
from identity.normalize import NormalizationError, normalize_identifier
from identity.registry import identifier_types
from privacy.audit import AuditAction, AuditItem, audit_record_many
from privacy.crypto import blind_index

MAX_STRING = 1024
CHANNELS = frozenset(Channel.values)  # Channel.values builds a new list on every access
_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")  # JSON's escape of NUL, not an escaped backslash before "u0000"
MAX_NAME = 128


class Rejected(Exception):
    """A message that cannot be accepted; code and reason never contain its values."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass
class MessageResult:
    index: int
    message_id: str
    status: str  # accepted | duplicate | suppressed | rejected
    code: str = ""
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"index": self.index, "message_id": self.message_id, "status": self.status}
        if self.code:
            body["code"], body["reason"] = self.code, self.reason
        return body


@dataclass
class BatchResult:
    batch_id: str
    results: list[MessageResult]
    merges: int = 0
    refusals: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def rejections_by_code(self) -> Counter:
        return Counter(r.code for r in self.results if r.status == "rejected")


@dataclass
class Registry:
    """The trait registry (and the active purpose codes, for consent messages), read once per batch."""

    traits: dict[str, TraitDefinition]
    properties: dict[str, TraitDefinition]
    purposes: frozenset[str] = frozenset()

    @classmethod
    def load(cls) -> Registry:
        from consent.models import Purpose

        traits, properties = {}, {}
        for definition in TraitDefinition.objects.all():
            (traits if definition.kind == TraitDefinition.Kind.TRAIT else properties)[definition.key] = definition
        purposes = frozenset(Purpose.objects.filter(active=True).values_list("code", flat=True))
        return cls(traits=traits, properties=properties, purposes=purposes)


# ---- validation ----------------------------------------------------------------------------


def _check_value(definition: TraitDefinition, value: Any) -> Any:
    """Return the value in its stored form, or raise Rejected (the reason names the key only)."""
    kind, key = definition.data_type, definition.key
    bad = Rejected("invalid_value", f"'{key}' is not a valid {kind}")
    if value is None:
        raise bad
    if kind == TraitDefinition.DataType.STRING:
        if not isinstance(value, str) or len(value) > MAX_STRING:
            raise bad
        return value.strip()
    if kind == TraitDefinition.DataType.BOOLEAN:
        if not isinstance(value, bool):
            raise bad
        return value
    if kind in (TraitDefinition.DataType.INTEGER, TraitDefinition.DataType.DECIMAL):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise bad
        if kind == TraitDefinition.DataType.INTEGER and int(value) != value:
            raise bad
        number = int(value) if kind == TraitDefinition.DataType.INTEGER else float(value)
        low, high = definition.lower_bound, definition.upper_bound
        if low is not None and not (low <= number <= high):
            raise Rejected("out_of_bounds", f"'{key}' is outside its declared bounds")
        return number
    if kind == TraitDefinition.DataType.DATE:
        parsed = parse_date(value) if isinstance(value, str) else None
        if parsed is None:
            raise bad
        return parsed.isoformat()
    if kind == TraitDefinition.DataType.ENUM:
        text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
        if text is None or text not in [str(v) for v in definition.enum_values]:
            raise Rejected("invalid_value", f"'{key}' is not one of its declared values")
        return text
    raise bad


def _unknown_policy() -> str:
    return getattr(settings, "CDP_INGEST_UNKNOWN_KEYS", "reject")


def _prepare_traits(raw: Any, registry: Registry) -> list[Trait]:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise Rejected("invalid_traits", "traits must be an object")
    traits = []
    for key, value in raw.items():
        definition = registry.traits.get(key)
        if definition is None:
            if _unknown_policy() == "quarantine" and isinstance(key, str) and len(key) <= 64:
                traits.append(Trait(key=key, value=value, personal=True, quarantined=True))
                continue
            raise Rejected("unknown_trait", f"trait '{str(key)[:64]}' is not in the trait registry")
        traits.append(Trait(key=key, value=_check_value(definition, value), personal=definition.personal))
    return traits


def _prepare_properties(raw: Any, registry: Registry) -> tuple[dict[str, Any], dict[str, Any]]:
    if raw is None:
        return {}, {}
    if not isinstance(raw, dict):
        raise Rejected("invalid_properties", "properties must be an object")
    plain: dict[str, Any] = {}
    sealed: dict[str, Any] = {}
    for key, value in raw.items():
        definition = registry.properties.get(key)
        if definition is None:
            if _unknown_policy() == "quarantine" and isinstance(key, str) and len(key) <= 64:
                sealed.setdefault("_quarantine", {})[key] = value
                continue
            raise Rejected("unknown_property", f"property '{str(key)[:64]}' is not in the registry")
        checked = _check_value(definition, value)
        (sealed if definition.personal else plain)[key] = checked
    return plain, sealed


# A batch's canonical identifiers by (type, raw value): people repeat their ids across the
# messages of a batch, and phone parsing plus the blind index's HMAC are the costly part of
# validation. Lives for one batch only, so no plaintext outlives the request that carried it.
IdMemo = dict[tuple[str, str], "PreparedId | Rejected"]


def _prepare_identifiers(raw: Any, memo: IdMemo) -> list[PreparedId]:
    if not isinstance(raw, dict) or not raw:
        raise Rejected("missing_identifiers", "identifiers must be a non-empty object of type: value")
    types = identifier_types()
    prepared = []
    for id_type, value in raw.items():
        key = (id_type, value) if isinstance(id_type, str) and isinstance(value, str) else None
        known = memo.get(key) if key is not None else None
        if known is None:
            known = _prepare_identifier(types, id_type, value)
            if key is not None:
                memo[key] = known
        if isinstance(known, Rejected):
            raise known
        prepared.append(known)
    return prepared


def _prepare_identifier(types: dict, id_type: Any, value: Any) -> PreparedId | Rejected:
    """One identifier canonicalised and blind-indexed, or the rejection (returned, to be memoised)."""
    spec = types.get(id_type)
    if spec is None:
        return Rejected("unknown_identifier_type", f"identifier type '{str(id_type)[:40]}' is not registered")
    try:
        canonical = normalize_identifier(id_type, value)
    except NormalizationError as exc:
        return Rejected(exc.code, exc.reason)
    return PreparedId(spec=spec, value=canonical, blind_index=blind_index(id_type=id_type, value=canonical))


def _prepare_identify(message: PreparedMessage, raw: dict, registry: Registry) -> None:
    message.traits = _prepare_traits(raw.get("traits"), registry)


def _prepare_track(message: PreparedMessage, raw: dict, registry: Registry) -> None:
    name = raw.get("event")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise Rejected("missing_event", "a track message needs an event name (1-128 characters)")
    message.name = name.strip()
    message.properties, message.sealed_properties = _prepare_properties(raw.get("properties"), registry)
    message.traits = _prepare_traits(raw.get("traits"), registry)


def _prepare_alias(message: PreparedMessage, raw: dict, registry: Registry) -> None:
    if len(message.ids) < 2:
        raise Rejected("alias_needs_two", "an alias message names at least two identifiers")


# What a source may say it collected consent with; portal, staff and system consents come
# through their own paths, never through a source's write key.
INGEST_CONSENT_METHODS = ("cookie_banner", "pos_signature", "api")
INGEST_CONSENT_EVENTS = ("granted", "withdrawn")


def _prepare_consent(message: PreparedMessage, raw: dict, registry: Registry) -> None:
    """A consent captured by the source (a cookie banner, a POS signature): checked here as far as
    it can be without the person; the ledger (consent.services) decides the rest after resolution."""
    body = raw.get("consent")
    if not isinstance(body, dict):
        raise Rejected("missing_consent", "a consent message needs a consent object")
    unknown = set(body) - {"purpose", "event", "method", "channel", "policy_version", "language", "evidence"}
    if unknown:
        raise Rejected("invalid_consent", f"unknown consent fields: {', '.join(sorted(map(str, unknown)))[:200]}")
    purpose, event, method = body.get("purpose"), body.get("event"), body.get("method")
    if purpose not in registry.purposes:
        raise Rejected("unknown_purpose", "consent.purpose must name an active purpose (GET /api/v1/purposes)")
    if event not in INGEST_CONSENT_EVENTS:
        raise Rejected("invalid_consent", f"consent.event must be one of: {', '.join(INGEST_CONSENT_EVENTS)}")
    if method not in INGEST_CONSENT_METHODS:
        raise Rejected("invalid_consent", f"consent.method must be one of: {', '.join(INGEST_CONSENT_METHODS)}")
    scope = body.get("channel", "")
    version = body.get("policy_version")
    if not isinstance(scope, str) or len(scope) > 20:
        raise Rejected("invalid_consent", "consent.channel must be a short channel scope such as 'sms'")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
        raise Rejected("invalid_consent", "consent.policy_version must be a positive integer")
    evidence = body.get("evidence") or {}
    if not isinstance(evidence, dict):
        raise Rejected("invalid_consent", "consent.evidence must be an object of short references")
    message.name = f"consent_{event}"
    message.consent = {
        "purpose": purpose,
        "event": event,
        "method": method,
        "channel": scope,
        "policy_version": version,
        "language": body.get("language") if body.get("language") in {"en", "zh-hans"} else "en",
        "evidence": evidence,
    }


Preparer = Callable[[PreparedMessage, dict, Registry], None]
# The message-type dispatch table: a new type adds one preparer function.
MESSAGE_TYPES: dict[str, Preparer] = {
    "identify": _prepare_identify,
    "track": _prepare_track,
    "alias": _prepare_alias,
    "consent": _prepare_consent,
}


def _check_text(raw: dict) -> None:
    """Refuse text PostgreSQL cannot store or UTF-8 cannot encode (NUL, lone surrogates such as
    a JSON "\\ud800"): caught here, the message is rejected alone instead of failing the
    batch's write. One C-speed JSON encoding of the message finds both."""
    try:
        text = json.dumps(raw, ensure_ascii=False)
        text.encode("utf-8")
    except (UnicodeEncodeError, TypeError, ValueError):
        raise Rejected("invalid_text", "text must be valid Unicode without lone surrogates") from None
    if _NUL.search(text):
        raise Rejected("invalid_text", "text must not contain NUL characters")


def _parse_timestamp(raw: Any) -> datetime:
    parsed = parse_datetime(raw) if isinstance(raw, str) else None
    if parsed is None:
        raise Rejected("invalid_timestamp", "timestamp must be an ISO 8601 date-time")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def prepare_message(
    index: int, raw: Any, *, source: Source, registry: Registry, memo: IdMemo | None = None
) -> PreparedMessage:
    """Validate and canonicalise one raw message, or raise Rejected. Pure: touches no rows.

    `memo` carries canonical identifiers between the messages of one batch (see IdMemo).
    """
    if not isinstance(raw, dict):
        raise Rejected("invalid_message", "each message must be a JSON object")
    _check_text(raw)
    message_id = raw.get("message_id")
    if not isinstance(message_id, str) or not message_id.strip() or len(message_id) > 128:
        raise Rejected("missing_message_id", "message_id is required (a string of 1-128 characters)")
    message_type = raw.get("type")
    preparer = MESSAGE_TYPES.get(message_type) if isinstance(message_type, str) else None
    if preparer is None:
        raise Rejected("unknown_type", f"type must be one of: {', '.join(sorted(MESSAGE_TYPES))}")
    if "timestamp" not in raw:
        raise Rejected("missing_timestamp", "timestamp is required")
    channel = raw.get("channel") or source.channel
    if not isinstance(channel, str) or channel not in CHANNELS:
        raise Rejected("invalid_channel", f"channel must be one of: {', '.join(Channel.values)}")
    message = PreparedMessage(
        index=index,
        message_id=message_id.strip(),
        type=message_type,
        occurred_at=_parse_timestamp(raw["timestamp"]),
        channel=channel,
        ids=_prepare_identifiers(raw.get("identifiers"), {} if memo is None else memo),
    )
    preparer(message, raw, registry)
    return message


# ---- the batch service ---------------------------------------------------------------------


def _message_id_of(raw: Any) -> str:
    value = raw.get("message_id") if isinstance(raw, dict) else None
    return value[:128] if isinstance(value, str) else ""


def source_of_key(actor: Actor) -> Source:
    """The Source a source key writes for; PermissionDenied for other roles or an unbound key."""
    actor.require_role(Role.SOURCE)
    source = Source.objects.filter(pk=actor.source_id).first() if actor.source_id else None
    if source is None:
        raise PermissionDenied("this source key is not bound to a source", code="source_unbound")
    return source


def ingest_batch(*, actor: Actor, messages: list[Any], source: Source | None = None, batch_id: str = "") -> BatchResult:
    """Ingest one batch for the actor's source; return a result per message.

    The actor must be a source key (or the system, e.g. import_events, naming `source`).
    `batch_id` names the batch in the audit trail (a queued batch keeps the id it was given
    when accepted); by default a fresh one. Raises PermissionDenied for other roles and
    ValueError for a batch over the size limit.
    """
    if actor.role == Role.SOURCE:
        source = source_of_key(actor)
    elif actor.role != Role.SYSTEM or source is None:
        raise PermissionDenied("only source keys (or system imports naming a source) ingest", code="role_not_allowed")
    if len(messages) > settings.CDP_INGEST_MAX_MESSAGES:
        raise ValueError(f"a batch holds at most {settings.CDP_INGEST_MAX_MESSAGES} messages")
    registry = Registry.load()
    results: list[MessageResult | None] = [None] * len(messages)
    prepared: list[PreparedMessage] = []
    memo: IdMemo = {}
    for index, raw in enumerate(messages):
        try:
            prepared.append(prepare_message(index, raw, source=source, registry=registry, memo=memo))
        except Rejected as exc:
            results[index] = MessageResult(index, _message_id_of(raw), "rejected", exc.code, exc.reason)
    batch_id = batch_id or uuid.uuid4().hex
    for attempt in range(4):
        try:
            merges, refusals = _write(actor=actor, source=source, prepared=prepared, results=results, batch_id=batch_id)
            break
        except OperationalError as exc:  # a PostgreSQL deadlock or SQLite busy: retry the whole batch
            if attempt == 3 or ("deadlock" not in str(exc) and "locked" not in str(exc)):
                raise
            time.sleep(0.05 * (attempt + 1))
    final = [r for r in results if r is not None]
    counts = Counter(r.status for r in final)
    return BatchResult(batch_id=batch_id, results=final, merges=merges, refusals=refusals, counts=dict(counts))


def _record_consent(
    *, actor: Actor, source: Source, message: PreparedMessage, profile_id: uuid.UUID, results: list
) -> None:
    """Append the message's consent to the ledger for the person it resolved to.

    In a savepoint: when the ledger refuses (a minor needs a guardian's grant, no published notice
    of that version), the message is rejected with the ledger's code, nothing of it reaches the
    ledger, and its event row goes too, so a corrected message with the same id is not a
    duplicate. Identifiers it carried stay linked, as they would from an identify message.
    """
    from consent.services import ConsentError, consent_record

    subject = Profile.objects.filter(pk=profile_id).values_list("merged_into_id", flat=True).first()
    subject_id = subject or profile_id  # merges keep merged_into pointing at the survivor
    body = message.consent or {}
    try:
        with transaction.atomic():
            consent_record(
                actor=actor,
                subject_id=subject_id,
                purpose=body["purpose"],
                event=body["event"],
                method=body["method"],
                channel=body["channel"],
                source=source.name,
                language=body["language"],
                policy_version=body["policy_version"],
                occurred_at=min(message.occurred_at, timezone.now()),
                evidence=body["evidence"],
            )
    except ConsentError as exc:
        Event.objects.filter(source=source, message_id=message.message_id).delete()
        code = getattr(exc, "code", "consent_refused") or "consent_refused"
        results[message.index] = MessageResult(message.index, message.message_id, "rejected", code, str(exc)[:200])


def _write(
    *, actor: Actor, source: Source, prepared: list[PreparedMessage], results: list, batch_id: str
) -> tuple[int, int]:
    consents: list[tuple[PreparedMessage, uuid.UUID]] = []
    with transaction.atomic():
        resolver = BatchResolver(source=source, actor_id=actor.actor_id)
        resolver.load(prepared)
        for message in prepared:
            if resolver.is_duplicate(message):
                results[message.index] = MessageResult(message.index, message.message_id, "duplicate")
            elif resolver.is_suppressed(message):
                results[message.index] = MessageResult(message.index, message.message_id, "suppressed")
            else:
                profile_id, origin = resolver.resolve(message)
                resolver.apply(message, profile_id, origin)
                results[message.index] = MessageResult(message.index, message.message_id, "accepted")
                if message.consent is not None:
                    consents.append((message, profile_id))
        resolver.flush()
        for message, profile_id in consents:
            _record_consent(actor=actor, source=source, message=message, profile_id=profile_id, results=results)
        merges = [
            AuditItem(
                action=AuditAction.PROFILE_MERGE,
                subject_id=merge.evidence.survivor_id,
                purpose="identity_resolution",
                object_type="merge_evidence",
                object_id=merge.evidence.pk or "",
                details={"absorbed": str(merge.evidence.absorbed_id), "rule": merge.evidence.rule, "batch": batch_id},
            )
            for merge in resolver.merges
        ]
        counts = Counter(r.status for r in results if r is not None)
        rejected = Counter(r.code for r in results if r is not None and r.status == "rejected")
        summary = AuditItem(
            action=AuditAction.INGEST_BATCH,
            purpose="identity_resolution",
            object_type="source",
            object_id=source.pk,
            details={
                "batch": batch_id,
                "received": len(results),
                "accepted": counts.get("accepted", 0),
                "duplicate": counts.get("duplicate", 0),
                "suppressed": counts.get("suppressed", 0),
                "rejected": counts.get("rejected", 0),
                "rejected_by_code": dict(rejected),
                "merges": len(resolver.merges),
                "refusals": len(resolver.refusals),
            },
        )
        # One chain lock and one INSERT for the batch: a profile.merge entry per merge, then the batch.
        audit_record_many(actor=actor, items=[*merges, summary])
    return len(resolver.merges), len(resolver.refusals)
