"""Resolving a batch of messages onto the identity graph: find, create, merge, record evidence.

Why a batch object: ingestion must reach ~1,000 messages per second, so a batch takes its locks
once, loads every identifier, profile and duplicate it needs in a handful of queries, resolves
message after message in memory, and writes everything with bulk statements at the end. It runs
inside the caller's transaction; nothing is visible until the caller commits.

Rules (docs/identity.md, ADR 0003):
- a message's identifiers are looked up by blind index; the best one (registry priority, not
  over its limit) chooses the profile; no match creates a profile;
- other matched profiles merge into the OLDEST of them, unless a rule refuses: a steward undid
  that merge before, the two hold different values of an exclusive type (external_id), or the
  link is a weak id (device, cookie) between two identified people (a shared household device);
- a new identifier over its per-profile limit is stored with over_limit=True and never merges;
- a weak id seen with more than `max_profiles` identified people in its window goes over limit;
- every merge leaves MergeEvidence, every refusal a MergeRefusal.

Concurrency (PostgreSQL): transaction-scoped advisory locks on every blind index and message key
of the batch, taken in sorted order, serialise batches that share a person; profile rows are
then locked FOR UPDATE and merged_into is followed after the lock, so a profile merged by a
concurrent batch is never written to.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from cdp.bulk import Row, array_literal, copy_insert, fast_bulk_update, new_row
from cdp.models import Event, JourneyStage, Profile, ProfileStatus, Source
from cdp.services.segments import segment_memberships_follow_merges  # segments (issue 8)
from identity.models import Identifier, MergeEvidence, MergeRefusal, Suppression, TraitObservation
from identity.registry import IdentifierType, identifier_types
from privacy.crypto import open_sealed, seal

STAGE_ORDER = [s.value for s in JourneyStage]
# The shared event vocabulary (the DP and journey helpers use the same names).
EVENT_STAGE = {
    "page_view": JourneyStage.AWARENESS,
    "ad_click": JourneyStage.AWARENESS,
    "product_view": JourneyStage.CONSIDERATION,
    "add_to_cart": JourneyStage.CONSIDERATION,
    "purchase": JourneyStage.PURCHASE,
    "product_use": JourneyStage.USE,
    "app_open": JourneyStage.USE,
    "loyalty_join": JourneyStage.LOYALTY,
    "repeat_purchase": JourneyStage.LOYALTY,
    "referral": JourneyStage.LOYALTY,
}
BI_REF_LEN = 16  # evidence names identifiers by a blind-index prefix, never by value
OBSERVATION_FIELD = "trait_observation"  # seal field of a TraitObservation's personal values


def ts_key(value: datetime) -> str:
    """A sortable UTC timestamp string (fixed width, so string order is time order)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def furthest_stage(*stages: str) -> str:
    known = [s for s in stages if s in STAGE_ORDER]
    return max(known, key=STAGE_ORDER.index) if known else ""


def advisory_key(text: str) -> int:
    """A signed 63-bit lock key from a string (blind indexes are already uniform hex)."""
    import hashlib

    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") & 0x7FFF_FFFF_FFFF_FFFF


def lock_keys(keys: set[str]) -> None:
    """Transaction-scoped advisory locks, sorted so that two batches never deadlock on them."""
    if connection.vendor != "postgresql" or not keys:
        return
    ordered = sorted({advisory_key(k) for k in keys})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(%s::bigint[]) AS k", [array_literal(ordered, "bigint")]
        )


@dataclass
class PreparedId:
    spec: IdentifierType
    value: str
    blind_index: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.spec.name, self.blind_index)


@dataclass
class Trait:
    key: str
    value: Any
    personal: bool
    quarantined: bool = False


@dataclass
class PreparedMessage:
    """A message that passed validation: only identity resolution and writing remain."""

    index: int
    message_id: str
    type: str
    occurred_at: datetime
    channel: str
    ids: list[PreparedId]
    name: str = ""
    traits: list[Trait] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    sealed_properties: dict[str, Any] = field(default_factory=dict)
    # A `consent` message's ledger entry (purpose, event, method, ...), recorded after resolution.
    consent: dict[str, Any] | None = None


@dataclass
class MergeRecord:
    evidence: MergeEvidence
    subject: uuid.UUID


class BatchResolver:
    """Resolve prepared messages of one source onto the graph; call `flush()` to write."""

    def __init__(self, *, source: Source, actor_id: str) -> None:
        self.source = source
        self.actor_id = actor_id
        self.now = timezone.now()
        self.types = identifier_types()
        # Loaded identifiers are model instances; those this batch creates are `Row`s (cdp.bulk).
        self.ids: dict[tuple[str, str], Identifier | Row] = {}
        self.profiles: dict[uuid.UUID, Profile | Row] = {}
        self.profile_ids: dict[uuid.UUID, dict[str, set[str]]] = {}
        self.vaults: dict[uuid.UUID, dict[str, Any]] = {}
        self.blocked: set[frozenset[uuid.UUID]] = set()
        self.new_profiles: list[Row] = []
        self.dirty_profiles: set[uuid.UUID] = set()
        self.new_ids: list[Row] = []
        self.dirty_ids: dict[int, Identifier] = {}
        self.events: list[tuple[Row, dict[str, Any]]] = []
        self.observations: list[Row] = []
        self.merges: list[MergeRecord] = []
        self.refusals: list[Row] = []
        self.duplicates: set[str] = set()
        self.suppressed: set[tuple[str, str]] = set()
        self.moved: dict[uuid.UUID, uuid.UUID] = {}
        # (row, subject, field, value): sealed at flush, after the batch's data keys exist.
        self.seal_jobs: list[tuple[Any, uuid.UUID, str, Any]] = []

    # ---- loading -------------------------------------------------------------------------
    def load(self, messages: list[PreparedMessage]) -> None:
        """Lock and load everything the batch touches, in a fixed number of queries."""
        bis = {i.blind_index for m in messages for i in m.ids}
        mids = {m.message_id for m in messages}
        lock_keys({f"bi|{b}" for b in bis} | {f"msg|{self.source.pk}|{m}" for m in mids})
        # The batch's clock starts once it holds its locks: a profile it creates is then newer
        # than any profile a batch it waited for created ("merge into the oldest" holds).
        self.now = timezone.now()
        self.duplicates = set(
            Event.objects.filter(source=self.source, message_id__in_array=mids).values_list("message_id", flat=True)
        )
        self.suppressed = set(
            Suppression.objects.filter(blind_index__in_array=bis).values_list("id_type", "blind_index")
        )
        for ident in Identifier.objects.filter(blind_index__in_array=bis):
            self.ids[(ident.id_type, ident.blind_index)] = ident
        self._load_profiles({i.profile_id for i in self.ids.values()})

    def _load_profiles(self, pids: set[uuid.UUID]) -> None:
        missing = pids - self.profiles.keys()
        while missing:
            locked = Profile.objects.select_for_update().filter(id__in_array=missing).order_by("id")
            for profile in locked:
                self.profiles[profile.id] = profile
            missing = {p.merged_into_id for p in self.profiles.values() if p.merged_into_id} - self.profiles.keys()
        roots = {self.root(pid) for pid in pids}
        unknown = roots - self.profile_ids.keys()
        if not unknown:
            return
        for pid in unknown:
            self.profile_ids[pid] = {}
        for pid, id_type, bi in Identifier.objects.filter(profile_id__in_array=unknown).values_list(
            "profile_id", "id_type", "blind_index"
        ):
            self.profile_ids[pid].setdefault(id_type, set()).add(bi)
        undone = MergeEvidence.objects.filter(undone_at__isnull=False).filter(
            Q(survivor_id__in_array=unknown) | Q(absorbed_id__in_array=unknown)
        )
        for a, b in undone.values_list("survivor_id", "absorbed_id"):
            self.blocked.add(frozenset((a, b)))

    def root(self, pid: uuid.UUID) -> uuid.UUID:
        profile = self.profiles[pid]
        seen = 0
        while profile.status == ProfileStatus.MERGED and profile.merged_into_id:
            if profile.merged_into_id not in self.profiles:
                self._load_profiles({profile.merged_into_id})
            profile = self.profiles[profile.merged_into_id]
            seen += 1
            if seen > 64:
                raise RuntimeError("merged_into chain does not end")
        return profile.id

    def is_duplicate(self, message: PreparedMessage) -> bool:
        if message.message_id in self.duplicates:
            return True
        self.duplicates.add(message.message_id)
        return False

    def is_suppressed(self, message: PreparedMessage) -> bool:
        """Suppressed: an identifier is on the suppression list, or still points to an erased
        profile (whose data key is shredded: nothing may be added to it)."""
        if any(i.key in self.suppressed for i in message.ids):
            return True
        return any(
            self.profiles[self.root(self.ids[i.key].profile_id)].status == ProfileStatus.ERASED
            for i in message.ids
            if i.key in self.ids
        )

    # ---- resolution ----------------------------------------------------------------------
    def _identified(self, pid: uuid.UUID) -> bool:
        held = self.profile_ids.get(pid, {})
        return any(bis and not self.types.get(t, self.types["email"]).weak for t, bis in held.items())

    def _refuse(self, rule: str, ident: PreparedId | Identifier | Row, profile: uuid.UUID, other, message) -> None:
        id_type = ident.spec.name if isinstance(ident, PreparedId) else ident.id_type
        self.refusals.append(
            new_row(
                MergeRefusal,
                rule=rule,
                id_type=id_type,
                blind_index_ref=ident.blind_index[:BI_REF_LEN],
                profile_id=profile,
                other_profile_id=other,
                source_id=self.source.pk,
                message_id=message.message_id,
                refused_at=self.now,
            )
        )

    def _block_reason(self, a: uuid.UUID, b: uuid.UUID) -> str:
        if frozenset((a, b)) in self.blocked:
            return "unmerged_pair"
        held_a, held_b = self.profile_ids.get(a, {}), self.profile_ids.get(b, {})
        for name, spec in self.types.items():
            if spec.exclusive and held_a.get(name) and held_b.get(name) and held_a[name] != held_b[name]:
                return "exclusive_conflict"
        return ""

    def _note_shared_weak(self, ident: Identifier, other: uuid.UUID) -> None:
        """Count identified people seen with a weak id; over `max_profiles` it stops resolving."""
        spec = self.types.get(ident.id_type)
        if spec is None or not spec.weak:
            return
        window = ident.window_started_at
        if window is None or (self.now - window).days >= spec.window_days:
            ident.window_started_at = self.now
            ident.linked_profiles = [str(self.root(ident.profile_id))]
        linked = set(ident.linked_profiles)
        linked.add(str(other))
        ident.linked_profiles = sorted(linked)
        if len(linked) > spec.max_profiles:
            ident.over_limit = True
        self._dirty_id(ident)

    def _dirty_id(self, ident: Identifier) -> None:
        if ident.pk:
            self.dirty_ids[ident.pk] = ident

    def resolve(self, message: PreparedMessage) -> tuple[uuid.UUID, uuid.UUID]:
        """Return (profile id, origin profile id) for the message, merging where proven."""
        matched = [(i, self.ids[i.key]) for i in message.ids if i.key in self.ids]
        new = [i for i in message.ids if i.key not in self.ids]
        usable = sorted((m for m in matched if not m[1].over_limit), key=lambda m: m[0].spec.priority)
        best = usable[0] if usable else (min(matched, key=lambda m: m[0].spec.priority) if matched else None)
        primary: uuid.UUID | None = None
        origin: uuid.UUID | None = None
        shared: Identifier | None = None
        if best is not None:
            primary, origin = self.root(best[1].profile_id), best[1].origin_profile_id
            if best[0].spec.weak and self._identified(primary) and any(not i.spec.weak for i in new):
                # A weak id (device, cookie) of someone identified, next to a new personal id:
                # probably another member of the household. Do not glue them together.
                shared = best[1]
                primary = origin = None
                usable = [m for m in usable if not m[0].spec.weak]
            elif any(
                i.spec.exclusive and self.profile_ids.get(primary, {}).get(i.spec.name) for i in new if i.spec.exclusive
            ):
                # The message brings a different exclusive id than its profile holds: another person.
                self._refuse("exclusive_conflict", best[1], primary, None, message)
                primary = origin = None
                usable = []
        if primary is None:
            primary = self._create_profile(message)
            origin = primary
            if shared is not None:
                self._refuse("shared_weak_id", shared, primary, self.root(shared.profile_id), message)
                self._note_shared_weak(shared, primary)
        for prepared, ident in usable:
            other = self.root(ident.profile_id)
            if other == primary:
                continue
            reason = self._block_reason(primary, other)
            if not reason and prepared.spec.weak and self._identified(primary) and self._identified(other):
                reason = "shared_weak_id"
                self._note_shared_weak(ident, primary)
            if reason:
                self._refuse(reason, ident, primary, other, message)
                continue
            rule = (
                "alias" if message.type == "alias" else ("weak_stitch" if prepared.spec.weak else "shared_identifier")
            )
            refs = [{"type": p.spec.name, "bi": p.blind_index[:BI_REF_LEN]} for p, _ in matched]
            primary = self.merge(primary, other, rule=rule, refs=refs, message=message)
        for _, ident in matched:
            if ident.last_seen_at < message.occurred_at:
                ident.last_seen_at = message.occurred_at
                self._dirty_id(ident)
        for prepared in new:
            self._attach(prepared, primary, origin or primary, message)
        return primary, origin or primary

    def _create_profile(self, message: PreparedMessage) -> uuid.UUID:
        profile = new_row(
            Profile,
            id=uuid.uuid4(),
            first_seen_at=message.occurred_at,
            last_seen_at=message.occurred_at,
            created_at=self.now,
            updated_at=self.now,
        )
        self.profiles[profile.id] = profile
        self.profile_ids[profile.id] = {}
        self.vaults[profile.id] = {}
        self.new_profiles.append(profile)
        return profile.id

    def _attach(self, prepared: PreparedId, pid: uuid.UUID, origin: uuid.UUID, message: PreparedMessage) -> None:
        held = self.profile_ids.setdefault(pid, {}).setdefault(prepared.spec.name, set())
        over = len(held) >= prepared.spec.max_per_profile
        ident = new_row(
            Identifier,
            id_type=prepared.spec.name,
            blind_index=prepared.blind_index,
            sealed_value=b"",
            profile_id=pid,
            origin_profile_id=origin,
            source_id=self.source.pk,
            first_seen_at=message.occurred_at,
            last_seen_at=message.occurred_at,
            over_limit=over,
        )
        if over:
            self._refuse("over_limit", prepared, pid, None, message)
        held.add(prepared.blind_index)
        self.seal_jobs.append((ident, origin, f"identifier:{prepared.spec.name}", prepared.value))
        self.ids[prepared.key] = ident
        self.new_ids.append(ident)

    # ---- merging -------------------------------------------------------------------------
    def merge(self, a: uuid.UUID, b: uuid.UUID, *, rule: str, refs: list[dict], message: PreparedMessage) -> uuid.UUID:
        """Merge two active profiles into the older one; return the survivor's id."""
        pa, pb = self.profiles[a], self.profiles[b]
        survivor, absorbed = sorted((pa, pb), key=lambda p: (p.created_at, str(p.id)))
        s, x = survivor.id, absorbed.id
        # Stored rows follow at flush, in one statement per table; rows of this batch still
        # naming x are pointed at their root there too (`_point_at_roots`), once per batch.
        self.moved[x] = s
        held = self.profile_ids.setdefault(s, {})
        for id_type, bis in self.profile_ids.pop(x, {}).items():
            held.setdefault(id_type, set()).update(bis)
        # Traits: newest observation wins per key; the full history stays in TraitObservation.
        vault_s, vault_x = self._vault(s), self._vault(x)
        times_s, times_x = dict(survivor.trait_observed_at or {}), dict(absorbed.trait_observed_at or {})
        for key, when in times_x.items():
            if key not in times_s or when > times_s[key]:
                times_s[key] = when
                if key in vault_x:
                    vault_s[key] = vault_x[key]
                elif key in (absorbed.attributes or {}):
                    survivor.attributes = {**(survivor.attributes or {}), key: absorbed.attributes[key]}
        survivor.trait_observed_at = times_s
        survivor.journey_stage = furthest_stage(survivor.journey_stage, absorbed.journey_stage)
        survivor.first_seen_at = min(filter(None, [survivor.first_seen_at, absorbed.first_seen_at]), default=None)
        survivor.last_seen_at = max(filter(None, [survivor.last_seen_at, absorbed.last_seen_at]), default=None)
        absorbed.status, absorbed.merged_into_id = ProfileStatus.MERGED, s
        absorbed.vault, absorbed.attributes, absorbed.trait_observed_at, absorbed.journey_stage = None, {}, {}, ""
        self.vaults[x] = {}
        self.dirty_profiles.update((s, x))
        evidence = MergeEvidence(
            survivor_id=s,
            absorbed_id=x,
            rule=rule,
            identifier_refs=refs,
            source=self.source,
            message_id=message.message_id,
            actor_id=self.actor_id,
            merged_at=self.now,
        )
        self.merges.append(MergeRecord(evidence=evidence, subject=s))
        return s

    def _vault(self, pid: uuid.UUID) -> dict[str, Any]:
        if pid not in self.vaults:
            blob = self.profiles[pid].vault
            self.vaults[pid] = open_sealed(subject_id=pid, field="traits", blob=blob) if blob else {}
        return self.vaults[pid]

    # ---- applying a message -----------------------------------------------------------------
    def apply(self, message: PreparedMessage, pid: uuid.UUID, origin: uuid.UUID) -> None:
        """Record the message's traits and event on the profile it resolved to."""
        profile = self.profiles[pid]
        when = ts_key(message.occurred_at)
        times = dict(profile.trait_observed_at or {})
        sealed: dict[str, Any] = {}
        plain: dict[str, Any] = {}
        for trait in message.traits:
            key = f"quarantine.{trait.key}" if trait.quarantined else trait.key
            personal = trait.personal or trait.quarantined
            (sealed if personal else plain)[key] = trait.value
            if trait.quarantined or (key in times and times[key] > when):
                continue  # quarantined values never enter the profile; late values only join history
            times[key] = when
            if personal:
                self._vault(pid)[key] = trait.value
            else:
                profile.attributes = {**(profile.attributes or {}), key: trait.value}
        if message.traits:
            # One history row per message (not per trait): the personal values sealed together.
            observation = new_row(
                TraitObservation,
                profile_id=pid,
                origin_profile_id=origin,
                keys=sorted([*sealed, *plain]),
                sealed_values=None,
                plain_values=plain,
                observed_at=message.occurred_at,
                source_id=self.source.pk,
                message_id=message.message_id,
            )
            if sealed:
                self.seal_jobs.append((observation, origin, OBSERVATION_FIELD, sealed))
            self.observations.append(observation)
        profile.trait_observed_at = times
        if profile.first_seen_at is None or message.occurred_at < profile.first_seen_at:
            profile.first_seen_at = message.occurred_at
        if profile.last_seen_at is None or message.occurred_at > profile.last_seen_at:
            profile.last_seen_at = message.occurred_at
        stage = EVENT_STAGE.get(message.name, "") if message.type == "track" else ""
        profile.journey_stage = furthest_stage(profile.journey_stage, stage)
        self.dirty_profiles.add(pid)
        event = new_row(
            Event,
            profile_id=pid,
            origin_profile_id=origin,
            source_id=self.source.pk,
            message_id=message.message_id,
            type=message.type,
            name=message.name,
            channel=message.channel,
            occurred_at=message.occurred_at,
            received_at=self.now,
            properties=message.properties,
        )
        self.events.append((event, message.sealed_properties))

    # ---- writing -----------------------------------------------------------------------------
    def _point_at_roots(self) -> None:
        """After the batch's merges: every row it holds names its profile's final survivor."""
        if not self.moved:
            return
        for ident in self.ids.values():
            ident.profile_id = self.root(ident.profile_id)
        for row in [*(event for event, _ in self.events), *self.observations]:
            row.profile_id = self.root(row.profile_id)
        for profile in self.profiles.values():
            if profile.merged_into_id:  # flat chains: a merged profile names the final survivor
                profile.merged_into_id = self.root(profile.merged_into_id)

    def flush(self) -> None:
        """Write the batch: profiles, identifiers, events, history, evidence. Audit is the caller's."""
        new_ids = {p.id for p in self.new_profiles}
        self._point_at_roots()
        # Keys first: moving rows re-seals them under their survivor, which may be new.
        create_data_keys(new_ids)
        if self.moved:
            survivors = {x: self.root(x) for x in self.moved}
            move_rows_bulk(survivors)
            segment_memberships_follow_merges(survivors)  # segments (issue 8): membership follows the merge
        for row, subject, field_name, value in self.seal_jobs:
            blob = seal(subject_id=subject, field=field_name, value=value)
            if field_name == OBSERVATION_FIELD:
                row.sealed_values = blob
            else:
                row.sealed_value = blob
        for pid in self.dirty_profiles | new_ids:
            profile = self.profiles[pid]
            if pid in self.vaults and profile.status == ProfileStatus.ACTIVE:
                vault = self.vaults[pid]
                profile.vault = seal(subject_id=pid, field="traits", value=vault) if vault else None
            profile.updated_at = self.now
        copy_insert(Profile, self.new_profiles)
        existing = [self.profiles[pid] for pid in self.dirty_profiles - new_ids]
        if existing:
            fast_bulk_update(
                Profile,
                existing,
                [
                    "status",
                    "merged_into",
                    "vault",
                    "attributes",
                    "trait_observed_at",
                    "journey_stage",
                    "first_seen_at",
                    "last_seen_at",
                    "updated_at",
                ],
            )
        copy_insert(Identifier, self.new_ids)
        if self.dirty_ids:
            fast_bulk_update(
                Identifier,
                list(self.dirty_ids.values()),
                ["profile", "last_seen_at", "over_limit", "linked_profiles", "window_started_at"],
            )
        events = []
        for event, sealed in self.events:
            if sealed:
                event.sealed_properties = seal(subject_id=event.profile_id, field="properties", value=sealed)
            events.append(event)
        copy_insert(Event, events)
        copy_insert(TraitObservation, self.observations)
        # bulk_create, not COPY: the audit entries of the merges name the evidence rows' ids.
        MergeEvidence.objects.bulk_create([m.evidence for m in self.merges], batch_size=500)
        copy_insert(MergeRefusal, self.refusals)


def create_data_keys(subject_ids: set[uuid.UUID]) -> None:
    """Create the data keys of a batch's new profiles in one INSERT instead of one each
    (fresh uuid4 profiles of this batch only: see privacy.crypto.datakeys.data_keys_create_fresh)."""
    from privacy.crypto.datakeys import data_keys_create_fresh

    data_keys_create_fresh(subject_ids)


def reseal_events(events, target: Callable[[uuid.UUID], uuid.UUID]) -> None:
    """Re-seal the personal properties of `events` (a queryset) under the profile each moves to,
    `target(current profile id)`, before the move (STORAGE CONTRACT: subject = event.profile)."""
    resealed = []
    for event in events.filter(sealed_properties__isnull=False).only("id", "profile_id", "sealed_properties"):
        value = open_sealed(subject_id=event.profile_id, field="properties", blob=event.sealed_properties)
        event.sealed_properties = seal(subject_id=target(event.profile_id), field="properties", value=value)
        resealed.append(event)
    fast_bulk_update(Event, resealed, ["sealed_properties"])


def move_rows_bulk(mapping: dict[uuid.UUID, uuid.UUID]) -> None:
    """Move every stored row of each absorbed profile to its survivor (merges of one batch).

    Sealed event properties are re-sealed under the survivor (STORAGE CONTRACT).
    """
    mapping = {x: s for x, s in mapping.items() if x != s}
    if not mapping:
        return
    reseal_events(Event.objects.filter(profile_id__in_array=mapping), mapping.__getitem__)
    # Profiles merged into an absorbed one earlier point straight at its survivor (flat chains).
    pointing = list(Profile.objects.filter(merged_into_id__in=list(mapping)).values_list("id", "merged_into_id"))
    for pid, absorbed in pointing:
        Profile.objects.filter(id=pid).update(merged_into_id=mapping[absorbed])
    for model in (Identifier, TraitObservation, Event):
        if connection.vendor == "postgresql":
            table = model._meta.db_table
            pairs = list(mapping.items())
            for start in range(0, len(pairs), 500):
                chunk = pairs[start : start + 500]
                values = ", ".join(["(%s::uuid, %s::uuid)"] * len(chunk))
                params = [str(v) for pair in chunk for v in pair]
                with connection.cursor() as cursor:
                    sql = (
                        f'UPDATE "{table}" SET "profile_id" = m.survivor '  # noqa: S608 (table from model meta)
                        f'FROM (VALUES {values}) AS m(absorbed, survivor) WHERE "{table}"."profile_id" = m.absorbed'
                    )
                    cursor.execute(sql, params)
        else:
            for absorbed, survivor in mapping.items():
                model.objects.filter(profile_id=absorbed).update(profile_id=survivor)


def move_profile_rows(*, from_id: uuid.UUID, to_id: uuid.UUID, origins: set[uuid.UUID] | None = None) -> int:
    """Move stored identifiers, trait observations and events from one profile to another.

    With `origins`, only rows whose origin_profile is in that set move (unmerge). Sealed event
    properties are re-sealed under the new profile (STORAGE CONTRACT: subject = event.profile).
    Returns the number of events moved.
    """
    ids = Identifier.objects.filter(profile_id=from_id)
    obs = TraitObservation.objects.filter(profile_id=from_id)
    events = Event.objects.filter(profile_id=from_id)
    if origins is not None:
        ids = ids.filter(origin_profile_id__in=list(origins))
        obs = obs.filter(origin_profile_id__in=list(origins))
        events = events.filter(origin_profile_id__in=list(origins))
    ids.update(profile_id=to_id)
    obs.update(profile_id=to_id)
    reseal_events(events, lambda _: to_id)
    return events.update(profile_id=to_id)


def rebuild_profile(profile: Profile) -> None:
    """Recompute a profile's vault, attributes, trait times, stage and first/last seen from its
    stored observations and events (after an unmerge moved rows away or back). Saves it."""
    vault: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    times: dict[str, str] = {}
    for obs in TraitObservation.objects.filter(profile=profile).order_by("observed_at", "id"):
        when = ts_key(obs.observed_at)
        values = dict(obs.plain_values or {})
        personal: set[str] = set()
        if obs.sealed_values:
            opened = open_sealed(subject_id=obs.origin_profile_id, field=OBSERVATION_FIELD, blob=obs.sealed_values)
            values.update(opened)
            personal = set(opened)
        for key, value in values.items():
            if key.startswith("quarantine.") or (key in times and times[key] > when):
                continue
            times[key] = when
            if key in personal:
                vault[key] = value
                attributes.pop(key, None)
            else:
                attributes[key] = value
                vault.pop(key, None)
    events = Event.objects.filter(profile=profile)
    names = set(events.filter(type="track").values_list("name", flat=True).distinct())
    seen = events.order_by("occurred_at").values_list("occurred_at", flat=True)
    profile.vault = seal(subject_id=profile.id, field="traits", value=vault) if vault else None
    profile.attributes = attributes
    profile.trait_observed_at = times
    profile.journey_stage = furthest_stage(*(EVENT_STAGE.get(n, "") for n in names))
    profile.first_seen_at = seen.first()
    profile.last_seen_at = events.order_by("-occurred_at").values_list("occurred_at", flat=True).first()
    profile.save()


@dataclass
class UnmergeResult:
    evidence: MergeEvidence
    restored: Profile
    survivor: Profile
    identifiers: int
    events: int
    observations: int


def split_merge(*, absorbed_id: uuid.UUID, actor_id: str) -> UnmergeResult:
    """Undo the most recent live merge of `absorbed_id`: identifiers, trait observations and
    events whose origin lies in the absorbed side go back to it, wherever they are now, also
    when they arrived after the merge. The caller holds the transaction and writes the audit.

    The absorbed side is the absorbed profile plus every profile merged into it before (their
    own live merges, whose evidence names it as survivor). Those stay merged into it.
    Raises LookupError when there is no live merge to undo.
    """
    evidence = (
        MergeEvidence.objects.select_for_update()
        .filter(absorbed_id=absorbed_id, undone_at__isnull=True)
        .order_by("-merged_at", "-id")
        .first()
    )
    if evidence is None:
        raise LookupError("this profile has no merge to undo")
    restored = Profile.objects.select_for_update().get(id=absorbed_id)
    survivor = Profile.objects.select_for_update().get(id=evidence.survivor_id)
    while survivor.status == ProfileStatus.MERGED and survivor.merged_into_id:
        survivor = Profile.objects.select_for_update().get(id=survivor.merged_into_id)
    side = {restored.id}
    live = list(
        MergeEvidence.objects.filter(undone_at__isnull=True)
        .exclude(pk=evidence.pk)
        .values_list("survivor_id", "absorbed_id")
    )
    grew = True
    while grew:
        grew = False
        for won, lost in live:
            if won in side and lost not in side:
                side.add(lost)
                grew = True
    counts = {
        "identifiers": Identifier.objects.filter(profile=survivor, origin_profile_id__in=side).count(),
        "observations": TraitObservation.objects.filter(profile=survivor, origin_profile_id__in=side).count(),
    }
    events = move_profile_rows(from_id=survivor.id, to_id=restored.id, origins=side)
    Profile.objects.filter(id__in=side - {restored.id}).update(merged_into=restored.id)
    restored.status, restored.merged_into = ProfileStatus.ACTIVE, None
    restored.save()
    rebuild_profile(restored)
    rebuild_profile(survivor)
    evidence.undone_at = timezone.now()
    evidence.undone_by = actor_id
    evidence.save(update_fields=["undone_at", "undone_by"])
    return UnmergeResult(evidence, restored, survivor, counts["identifiers"], events, counts["observations"])
