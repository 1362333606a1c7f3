"""The privacy-budget ledger and the release cache.

Why in the database: the budget must survive restarts and be shared by every web process, and
spending must be atomic (row locks via select_for_update), so concurrent requests can never
overspend. Epsilon is a Decimal with 6 places so that sums are exact (ten charges of 0.1 spend
exactly 1.0). A release stores only noisy values: the exact aggregate is never persisted.
"""

from __future__ import annotations

from django.db import models


class BudgetScope(models.TextChoices):
    ANALYST = "analyst", "One analyst (API key) on one dataset"
    DATASET = "dataset", "Global cap on one dataset, across analysts"


class BudgetAccount(models.Model):
    """Epsilon spent in one period, by one analyst (scope analyst) or by everyone (scope dataset)."""

    dataset = models.CharField(max_length=64)
    scope = models.CharField(max_length=10, choices=BudgetScope.choices)
    analyst_id = models.CharField(max_length=128, blank=True, default="", help_text="Empty for the dataset scope.")
    period_start = models.DateField()
    period_end = models.DateField()
    epsilon_limit = models.DecimalField(max_digits=12, decimal_places=6)
    epsilon_spent = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "scope", "analyst_id", "period_start"], name="dp_budget_account_uniq"
            ),
            models.CheckConstraint(condition=models.Q(epsilon_spent__gte=0), name="dp_budget_spent_nonneg"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset}/{self.scope}/{self.analyst_id or '*'}@{self.period_start}"

    @property
    def epsilon_remaining(self):
        return max(self.epsilon_limit - self.epsilon_spent, 0)


class DpRelease(models.Model):
    """One released answer (noisy values only), the cache for identical specs in a period."""

    analyst_id = models.CharField(max_length=128)
    dataset = models.CharField(max_length=64)
    period_start = models.DateField()
    spec_hash = models.CharField(max_length=64)
    metric = models.CharField(max_length=20)
    spec = models.JSONField(help_text="The normalised spec (no data).")
    result = models.JSONField(help_text="Noisy values and error bounds only; never an exact aggregate.")
    epsilon = models.DecimalField(max_digits=12, decimal_places=6)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["analyst_id", "dataset", "period_start", "spec_hash"], name="dp_release_cache_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.metric} {self.spec_hash[:12]}"


class BudgetCharge(models.Model):
    """One debit of one account by one release (two per release: analyst and dataset)."""

    account = models.ForeignKey(BudgetAccount, on_delete=models.PROTECT, related_name="charges")
    release = models.ForeignKey(DpRelease, on_delete=models.PROTECT, related_name="charges")
    epsilon = models.DecimalField(max_digits=12, decimal_places=6)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.epsilon} from account {self.account_id} for release {self.release_id}"
