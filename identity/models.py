"""The identity graph: identifiers pointing to profiles, merge evidence, refusals, suppressions.

Nothing here holds plaintext: an identifier is its type plus a blind index (for lookup) and a
sealed value (for the steward's 360 view). Provenance is kept so that a merge can be undone:
`origin_profile` is the profile an identifier (or trait observation, or event) first belonged
to, and never changes when merges move rows around. ADR: docs/adr/0003-merge-semantics.md.
"""

from __future__ import annotations

from django.db import models

from cdp.models import Profile, Source


class Identifier(models.Model):
    """One identifier value of one type. Unique by (type, blind index): it belongs to one profile.

    `sealed_value` is sealed under `origin_profile` (field "identifier:<type>"), which never
    changes, so the ciphertext stays openable after merges and unmerges.
    """

    id_type = models.CharField(max_length=32)
    blind_index = models.CharField(max_length=64)
    sealed_value = models.BinaryField()
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="identifiers")
    origin_profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")
    source = models.ForeignKey(Source, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    # Over its per-profile limit, or a weak id shared by too many people: stored, never used to merge.
    over_limit = models.BooleanField(default=False)
    # Weak ids: distinct identified profiles seen with this value in the current window (pseudonyms).
    linked_profiles = models.JSONField(default=list, blank=True)
    window_started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # blind_index first: ingestion looks identifiers up by blind index alone (a batch at once).
        constraints = [models.UniqueConstraint(fields=["blind_index", "id_type"], name="identifier_bi_type_uniq")]
        indexes = [models.Index(fields=["profile", "id_type"])]

    def __str__(self) -> str:
        return f"{self.id_type}:{self.blind_index[:12]}"


class MergeEvidence(models.Model):
    """Why two profiles became one: the rule, the identifiers (blind-index refs), the message.

    `absorbed` keeps status=merged and merged_into=survivor until a steward undoes the merge
    (`undone_at`); an undone pair is never merged again automatically.
    """

    survivor = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="merges_won")
    absorbed = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="merges_lost")
    rule = models.CharField(max_length=40)
    identifier_refs = models.JSONField(default=list, help_text="[{type, bi}] with bi a blind-index prefix")
    source = models.ForeignKey(Source, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    message_id = models.CharField(max_length=128, blank=True, default="")
    actor_id = models.CharField(max_length=100, blank=True, default="")
    merged_at = models.DateTimeField()
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["survivor", "merged_at"]), models.Index(fields=["absorbed", "merged_at"])]
        ordering = ["merged_at", "id"]

    def __str__(self) -> str:
        return f"merge {self.absorbed_id} -> {self.survivor_id} ({self.rule})"


class MergeRefusal(models.Model):
    """A merge the identifiers suggested but a rule refused (limits, exclusive ids, shared device)."""

    rule = models.CharField(max_length=40)
    id_type = models.CharField(max_length=32)
    blind_index_ref = models.CharField(max_length=16)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")
    other_profile = models.ForeignKey(Profile, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    source = models.ForeignKey(Source, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    message_id = models.CharField(max_length=128, blank=True, default="")
    refused_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["profile", "refused_at"])]

    def __str__(self) -> str:
        return f"refused {self.rule} ({self.id_type})"


class TraitObservation(models.Model):
    """The traits one message stated: the history behind "newest value wins".

    One row per message (not per trait), so a CRM record with ten traits costs one row and one
    seal. Personal values are sealed together under `origin_profile` (field
    "trait_observation"); non-personal ones are plain; `keys` names them all (names are not
    personal). Unmerge rebuilds each profile's vault and attributes from its observations.
    """

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="trait_observations")
    origin_profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")
    keys = models.JSONField(default=list)
    sealed_values = models.BinaryField(null=True, blank=True)
    plain_values = models.JSONField(default=dict, blank=True)
    observed_at = models.DateTimeField()
    source = models.ForeignKey(Source, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    message_id = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["profile", "observed_at"])]

    def __str__(self) -> str:
        return f"{','.join(self.keys)}@{self.observed_at:%Y-%m-%d}"


class Suppression(models.Model):
    """An erased person's identifier: messages carrying it are dropped ("suppressed").

    Filled by the erasure feature; ingestion only reads it.
    """

    id_type = models.CharField(max_length=32)
    blind_index = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    reason = models.CharField(max_length=40, blank=True, default="erasure")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["blind_index", "id_type"], name="suppression_bi_type_uniq")]

    def __str__(self) -> str:
        return f"suppressed {self.id_type}:{self.blind_index[:12]}"
