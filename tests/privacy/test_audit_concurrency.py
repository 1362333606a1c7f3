"""Concurrent writers on PostgreSQL still leave one valid chain (the advisory chain lock)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from cdp.actor import Actor
from cdp.models import Source
from privacy.audit import AuditAction, audit_record
from privacy.audit.checkpoints import checkpoint_create
from privacy.audit.models import AuditEntry
from privacy.audit.verify import audit_chain_check

THREADS, PER_THREAD = 8, 15


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_writers_leave_one_valid_chain():
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(PER_THREAD):
                with transaction.atomic():
                    # A change and its audit entry, the entry last (as services do).
                    Source.objects.create(name=f"w{n}-{i}")
                    audit_record(actor=Actor.system(f"writer-{n}"), action=AuditAction.SYSTEM, details={"i": i})
                if i % 5 == 4:
                    checkpoint_create(actor=Actor.system(f"writer-{n}"))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    total = AuditEntry.objects.count()
    assert AuditEntry.objects.filter(action="system").count() == THREADS * PER_THREAD
    assert list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True)) == list(range(1, total + 1))
    result = audit_chain_check()
    assert result.valid, result.message
    assert result.checked == total and result.checkpoints_checked >= 1
