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
