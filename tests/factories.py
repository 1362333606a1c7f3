"""factory-boy factories for the core models."""

from __future__ import annotations

import factory
from django.utils import timezone

from cdp.models import Channel, Event, Profile, Source, TraitDefinition


class SourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Source
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"source-{n}")
    channel = Channel.WEB


class ProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Profile

    first_seen_at = factory.LazyFunction(timezone.now)
    last_seen_at = factory.LazyFunction(timezone.now)


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    profile = factory.SubFactory(ProfileFactory)
    source = factory.SubFactory(SourceFactory)
    message_id = factory.Sequence(lambda n: f"msg-{n}")
    type = Event.Type.TRACK
    name = "page_view"
    channel = Channel.WEB
    occurred_at = factory.LazyFunction(timezone.now)


class TraitDefinitionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TraitDefinition
        django_get_or_create = ("kind", "key")

    key = factory.Sequence(lambda n: f"trait_{n}")
    kind = TraitDefinition.Kind.TRAIT
    data_type = TraitDefinition.DataType.STRING
    personal = True


def profile_with_traits(**traits) -> Profile:
    """A profile whose vault holds `traits` (e.g. birth_date="2015-03-01"), sealed as ingestion does."""
    from privacy.crypto import seal

    profile = ProfileFactory()
    profile.vault = seal(subject_id=profile.id, field="traits", value=traits)
    profile.save(update_fields=["vault"])
    return profile
# --- DP analytics (issue 7): the registry entries that journey metrics and DP tests use. ---
DP_TEST_TRAITS = [
    # key, kind, data_type, bounds, enum
    ("city", TraitDefinition.Kind.TRAIT, TraitDefinition.DataType.ENUM, None, ["Shanghai", "Beijing", "Other"]),
    ("membership_level", TraitDefinition.Kind.TRAIT, TraitDefinition.DataType.ENUM, None, ["none", "gold"]),
    ("age_band", TraitDefinition.Kind.TRAIT, TraitDefinition.DataType.INTEGER, (0, 120), []),
    ("amount", TraitDefinition.Kind.PROPERTY, TraitDefinition.DataType.DECIMAL, (0, 5000), []),
    ("score", TraitDefinition.Kind.PROPERTY, TraitDefinition.DataType.INTEGER, (0, 10), []),
    ("csat", TraitDefinition.Kind.PROPERTY, TraitDefinition.DataType.INTEGER, (1, 5), []),
    ("product_category", TraitDefinition.Kind.PROPERTY, TraitDefinition.DataType.ENUM, None, ["apparel", "beauty"]),
    ("unbounded", TraitDefinition.Kind.PROPERTY, TraitDefinition.DataType.DECIMAL, None, []),
    ("store_id", TraitDefinition.Kind.PROPERTY, TraitDefinition.DataType.STRING, None, []),
    ("favourite_store", TraitDefinition.Kind.TRAIT, TraitDefinition.DataType.STRING, None, []),
]


def dp_registry() -> dict[str, TraitDefinition]:
    """Filterable, non-personal registry entries for DP and rule tests (idempotent)."""
    out = {}
    for key, kind, dtype, bounds, enum in DP_TEST_TRAITS:
        out[key] = TraitDefinitionFactory(
            key=key,
            kind=kind,
            data_type=dtype,
            personal=False,
            filterable=True,
            lower_bound=bounds[0] if bounds else None,
            upper_bound=bounds[1] if bounds else None,
            enum_values=enum,
        )
    return out


def registered_recipient(
    name: str = "SMS vendor",
    *,
    role: str = "processor",
    country: str = "CN",
    mechanism: str = "",
    purposes: list[str] | None = None,
):
    """A recipients-register entry (issue 10); by default a domestic processor allowed every purpose."""
    from consent.models import Purpose
    from privacy.compliance.models import Recipient

    if purposes is None:
        purposes = list(Purpose.objects.values_list("code", flat=True))
    recipient, _ = Recipient.objects.update_or_create(
        name=name,
        defaults={
            "contact": "privacy@vendor.example",
            "role": role,
            "country": country,
            "transfer_mechanism": mechanism,
            "purposes": purposes,
        },
    )
    return recipient
