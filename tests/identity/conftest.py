"""Helpers for identity and ingestion tests: a source, its actor, the demo registry, a sender."""

from __future__ import annotations

import itertools

import pytest

from cdp.actor import Actor, ActorKind, Role
from cdp.demo import seed_traits
from cdp.models import Channel, Source

_counter = itertools.count()


@pytest.fixture
def registry(db):
    seed_traits()


@pytest.fixture
def source(db) -> Source:
    return Source.objects.create(name="web-test", channel=Channel.WEB)


@pytest.fixture
def source_actor(source) -> Actor:
    return Actor(kind=ActorKind.API_KEY, actor_id="key:test", role=Role.SOURCE, source_id=source.pk)


def msg(type_: str = "identify", *, mid: str | None = None, ts: str = "2026-01-01T10:00:00Z", **fields) -> dict:
    """A message dict; identifiers given as keyword `ids`."""
    body = {"message_id": mid or f"m-{next(_counter)}", "type": type_, "timestamp": ts}
    ids = fields.pop("ids", None)
    if ids is not None:
        body["identifiers"] = ids
    body.update(fields)
    return body


@pytest.fixture
def send(source_actor, registry):
    from cdp.services.ingest import ingest_batch

    def _send(*messages: dict):
        return ingest_batch(actor=source_actor, messages=list(messages))

    return _send
