"""Queued ingestion batches: `POST /api/v1/ingest/batches` answers 202 and a worker ingests.

Imported by cdp.models so that Django sees the model in the `cdp` app.
"""

from __future__ import annotations

import uuid

from django.db import models

from cdp.models import Source


class IngestBatch(models.Model):
    """One batch accepted for ingestion by a worker, then its results.

    The raw messages hold personal data (e-mails, phones, names), so they are never put into
    the broker and never stored plain: `payload` is sealed under the batch's own id as the
    subject (privacy.crypto), the task carries only the id, and the worker shreds the batch's
    data key in the transaction that ingests it. Results hold only message ids, statuses and
    reason codes, as the synchronous answer does, and are kept for
    CDP_INGEST_BATCH_RETENTION_DAYS for the source to poll.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="ingest_batches")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    received = models.PositiveIntegerField(help_text="messages in the batch")
    payload = models.BinaryField(null=True, blank=True, help_text="the messages, sealed; None once ingested")
    requested_by = models.CharField(max_length=64, help_text="actor_id of the source key (a key prefix)")
    request_id = models.CharField(max_length=64, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=40, blank=True, default="", help_text="a code, never a message")
    counts = models.JSONField(default=dict, blank=True)
    results = models.JSONField(default=list, blank=True)
    merges = models.PositiveIntegerField(default=0)
    refusals = models.PositiveIntegerField(default=0)
    queued_at = models.DateTimeField(auto_now_add=True)
    attempted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "queued_at"])]

    def __str__(self) -> str:
        return f"ingest batch {self.id} ({self.status})"
