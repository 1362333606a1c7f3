"""Signed checkpoints: what they sign, idempotence, the beat task and its schedule."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings

from cdp.actor import Actor
from privacy.audit import AuditAction, audit_record
from privacy.audit.chain import checkpoint_message, format_time, key_id
from privacy.audit.checkpoints import checkpoint_create, public_key_hex, public_key_pem
from privacy.audit.models import AuditCheckpoint, AuditEntry
from privacy.tasks import audit_checkpoint, audit_verify_chain

pytestmark = pytest.mark.django_db


def test_checkpoint_signs_the_head_with_the_configured_key():
    for i in range(3):
        audit_record(actor=Actor.system("tests"), action=AuditAction.SYSTEM, details={"i": i})
    checkpoint = checkpoint_create(actor=Actor.system("tests"))
    head = AuditEntry.objects.get(seq=3)
    assert (checkpoint.seq, checkpoint.hash) == (3, head.hash)
    assert checkpoint.public_key == public_key_hex() and checkpoint.key_id == key_id(public_key_hex())
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex()))
    public.verify(
        bytes.fromhex(checkpoint.signature),
        checkpoint_message(3, head.hash, format_time(AuditCheckpoint.objects.get(seq=3).signed_at)),
    )
    assert "BEGIN PUBLIC KEY" in public_key_pem()
    record = AuditEntry.objects.get(seq=4)
    assert record.action == "audit.checkpoint" and record.details == {"seq": 3, "key_id": checkpoint.key_id}


def test_checkpoint_is_idempotent_and_skips_an_empty_chain():
    assert checkpoint_create(actor=Actor.system("tests")) is None
    audit_record(actor=Actor.system("tests"), action=AuditAction.SYSTEM)
    assert checkpoint_create(actor=Actor.system("tests")).seq == 1
    # Only its own audit.checkpoint entry is new: nothing to sign, nothing written.
    assert checkpoint_create(actor=Actor.system("tests")) is None
    assert (AuditCheckpoint.objects.count(), AuditEntry.objects.count()) == (1, 2)
    audit_record(actor=Actor.system("tests"), action=AuditAction.SYSTEM)
    assert checkpoint_create(actor=Actor.system("tests")).seq == 3


def test_beat_schedules_the_tasks_and_they_run():
    schedule = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"privacy.audit_checkpoint", "privacy.audit_verify"} <= schedule
    audit_record(actor=Actor.system("tests"), action=AuditAction.SYSTEM)
    assert audit_checkpoint.run() == 1
    assert audit_checkpoint.run() is None
    assert audit_verify_chain.run()["valid"] is True


def test_activity_chart_stacks_actions_and_groups_the_rest():
    from datetime import date, timedelta

    from privacy.audit.pages import PALETTE, activity_chart

    today = date(2026, 11, 23)
    dates = [today - timedelta(days=i) for i in range(3)][::-1]
    counts = {f"action.{i}": {today: i + 1} for i in range(len(PALETTE) + 3)}
    chart = activity_chart({"dates": dates, "counts": counts})
    legend = [item["action"] for item in chart["legend"]]
    assert len(legend) == len(PALETTE) + 1 and legend[-1] == "other"
    assert legend[0] == f"action.{len(PALETTE) + 2}"  # the busiest action first
    total = sum(i + 1 for i in range(len(PALETTE) + 3))
    assert chart["peak"] == total
    heights = sum(bar["h"] for bar in chart["bars"])
    assert abs(heights - (chart["axis_y"] - 10)) < 1  # one full-height stacked bar on the busiest day
