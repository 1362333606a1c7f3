"""Retention (GDPR Art. 5(1)(e) storage limitation; PIPL Art. 19 shortest period necessary).

Periods come from the purpose registry (`Purpose.retention_days`) by data category:

- an event is expired when it is older than the longest retention of the active purposes that
  use the event data category (`CDP_RETENTION_EVENT_CATEGORY`, default "transaction"); with no
  such purpose no period is defined and nothing is purged automatically (reported as None);
- a profile is left with no basis when it is active, has no events left, no current consent
  grant, was last seen longer ago than the longest retention of any active purpose, and has no
  open data-subject request. It is then crypto-shredded and emptied (no suppression entry: the
  person did not ask to be forgotten, they may come back).

`retention_purge(dry_run=True)` counts without changing anything. Both modes write one audit
entry (`retention.purge`) with the counts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from cdp.actor import Actor, Role
from cdp.models import Event, Profile, ProfileStatus
from privacy.audit import AuditAction, audit_record


@dataclass
class RetentionReport:
    dry_run: bool
    event_retention_days: int | None
    profile_retention_days: int | None
    events: int = 0
    profiles: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def retention_periods() -> tuple[int | None, int | None]:
    """(days events are kept, days an inactive profile without basis is kept); None: no purpose."""
    from consent.models import Purpose

    category = settings.CDP_RETENTION_EVENT_CATEGORY
    event_days = None
    profile_days = None
    for purpose in Purpose.objects.filter(active=True):
        profile_days = max(profile_days or 0, purpose.retention_days)
        if category in (purpose.data_categories or []):
            event_days = max(event_days or 0, purpose.retention_days)
    return event_days, profile_days


def _expired_profiles(cutoff: datetime, event_cutoff: datetime | None):
    """Active profiles last seen before `cutoff` that keep no event at or after `event_cutoff`
    (None: events do not expire), hold no current grant and have no open request."""
    from consent.models import GRANTING_EVENTS, ConsentState
    from privacy.dsar.models import DataSubjectRequest

    now = timezone.now()
    kept_events = Event.objects.filter(profile=OuterRef("pk"))
    if event_cutoff is not None:
        kept_events = kept_events.filter(occurred_at__gte=event_cutoff)
    grants = ConsentState.objects.filter(subject=OuterRef("pk"), event__in=GRANTING_EVENTS).exclude(expires_at__lte=now)
    open_requests = DataSubjectRequest.objects.filter(
        subject=OuterRef("pk"), status__in=DataSubjectRequest.OPEN_STATUSES
    )
    return (
        Profile.objects.filter(status=ProfileStatus.ACTIVE, last_seen_at__lt=cutoff)
        .exclude(Exists(kept_events))
        .exclude(Exists(grants))
        .exclude(Exists(open_requests))
    )


def retention_purge(*, actor: Actor, dry_run: bool = False, now: datetime | None = None) -> RetentionReport:
    """Purge expired events, then profiles left with no basis; audited with the counts."""
    from identity.models import Identifier, TraitObservation
    from privacy.crypto import shred_subject

    actor.require_role(Role.SYSTEM, Role.COMPLIANCE, Role.ADMIN)
    moment = now or timezone.now()
    event_days, profile_days = retention_periods()
    report = RetentionReport(dry_run=dry_run, event_retention_days=event_days, profile_retention_days=profile_days)
    with transaction.atomic():
        events = Event.objects.none()
        if event_days is not None:
            events = Event.objects.filter(occurred_at__lt=moment - timedelta(days=event_days))
        if dry_run:
            report.events = events.count()
        else:
            report.events = events.delete()[0]
        if profile_days is not None:
            cutoff = moment - timedelta(days=profile_days)
            event_cutoff = moment - timedelta(days=event_days) if event_days is not None else None
            ids = list(_expired_profiles(cutoff, event_cutoff).values_list("pk", flat=True))
            report.profiles = len(ids)
            if not dry_run and ids:
                absorbed = list(Profile.objects.filter(merged_into_id__in=ids).values_list("pk", flat=True))
                every = ids + absorbed
                Identifier.objects.filter(profile_id__in=every).delete()
                TraitObservation.objects.filter(profile_id__in=every).delete()
                Profile.objects.filter(pk__in=every).update(
                    vault=None, attributes={}, trait_observed_at={}, journey_stage=""
                )
                Profile.objects.filter(pk__in=ids).update(status=ProfileStatus.ERASED)
                for pid in every:
                    shred_subject(subject_id=pid)
        audit_record(
            actor=actor,
            action=AuditAction.RETENTION_PURGE,
            details=report.as_dict(),
        )
    return report
