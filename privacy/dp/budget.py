"""The privacy-budget ledger: periods, limits, and the locked check-and-charge.

Why two accounts per release: sequential composition bounds what ONE analyst learns (their
account), and analysts who share results compose too, so a global account per dataset caps them
together. Both are charged in one transaction after locking both rows (select_for_update, in a
fixed order to avoid deadlocks), so concurrent requests queue and can never overspend.
ADR: docs/adr/0006-dp-accounting.md.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from privacy.dp.models import BudgetAccount, BudgetScope

PERIODS = ("day", "week", "month", "quarter", "year")
QUANT = Decimal("0.000001")


class BudgetExhausted(Exception):
    """Not enough epsilon left in the analyst's or the dataset's account; nothing was charged."""

    def __init__(self, scope: str, requested: Decimal, remaining: Decimal) -> None:
        super().__init__(f"insufficient privacy budget ({scope}): requested epsilon {requested}, remaining {remaining}")
        self.scope = scope
        self.requested = requested
        self.remaining = remaining


def as_epsilon(value: float | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(QUANT)


def period_bounds(now: dt.datetime | None = None, period: str | None = None) -> tuple[dt.date, dt.date]:
    """[start, end) of the accounting period containing `now` (UTC dates)."""
    period = period or settings.CDP_DP_PERIOD
    if period not in PERIODS:
        raise ValueError(f"CDP_DP_PERIOD must be one of {', '.join(PERIODS)}")
    today = (now or timezone.now()).astimezone(dt.UTC).date()
    if period == "day":
        return today, today + dt.timedelta(days=1)
    if period == "week":
        start = today - dt.timedelta(days=today.weekday())
        return start, start + dt.timedelta(days=7)
    if period == "year":
        return dt.date(today.year, 1, 1), dt.date(today.year + 1, 1, 1)
    months = 3 if period == "quarter" else 1
    first_month = ((today.month - 1) // months) * months + 1
    start = dt.date(today.year, first_month, 1)
    year, month = (
        (start.year, start.month + months)
        if start.month + months <= 12
        else (start.year + 1, start.month + months - 12)
    )
    return start, dt.date(year, month, 1)


def analyst_limit(analyst_id: str) -> Decimal:
    overrides = settings.CDP_DP_ANALYST_EPSILON_OVERRIDES or {}
    return as_epsilon(overrides.get(analyst_id, settings.CDP_DP_ANALYST_EPSILON))


def dataset_limit(dataset: str) -> Decimal:
    return as_epsilon(settings.CDP_DP_DATASET_EPSILON)


def _ensure(dataset: str, scope: str, analyst_id: str, period: tuple[dt.date, dt.date], limit: Decimal) -> int:
    """The account's id, creating it if needed (racing creators meet the unique constraint)."""
    lookup = {"dataset": dataset, "scope": scope, "analyst_id": analyst_id, "period_start": period[0]}
    found = BudgetAccount.objects.filter(**lookup).values_list("id", flat=True).first()
    if found:
        return found
    try:
        with transaction.atomic():
            return BudgetAccount.objects.create(**lookup, period_end=period[1], epsilon_limit=limit).id
    except IntegrityError:
        return BudgetAccount.objects.get(**lookup).id


@dataclass(frozen=True)
class Accounts:
    analyst: BudgetAccount
    dataset: BudgetAccount


def budget_accounts(*, analyst_id: str, dataset: str, period: tuple[dt.date, dt.date], lock: bool) -> Accounts:
    """Both accounts for this period, with limits refreshed from settings.

    With lock=True (inside transaction.atomic) the rows are locked with select_for_update in id
    order, so two releases touching the same accounts serialise here.
    """
    ids = {
        BudgetScope.ANALYST: _ensure(dataset, BudgetScope.ANALYST, analyst_id, period, analyst_limit(analyst_id)),
        BudgetScope.DATASET: _ensure(dataset, BudgetScope.DATASET, "", period, dataset_limit(dataset)),
    }
    qs = BudgetAccount.objects.filter(id__in=ids.values()).order_by("id")
    if lock:
        qs = qs.select_for_update()
    rows = {row.scope: row for row in qs}
    rows[BudgetScope.ANALYST].epsilon_limit = analyst_limit(analyst_id)
    rows[BudgetScope.DATASET].epsilon_limit = dataset_limit(dataset)
    return Accounts(analyst=rows[BudgetScope.ANALYST], dataset=rows[BudgetScope.DATASET])


def budget_check(accounts: Accounts, epsilon: Decimal) -> None:
    """Raise BudgetExhausted if either account cannot pay `epsilon`."""
    for scope, account in (("analyst", accounts.analyst), ("dataset", accounts.dataset)):
        remaining = account.epsilon_limit - account.epsilon_spent
        if epsilon > remaining:
            raise BudgetExhausted(scope, epsilon, max(remaining, Decimal(0)))


def budget_debit(accounts: Accounts, epsilon: Decimal) -> None:
    """Charge both (already locked and checked) accounts. Call inside the same transaction."""
    for account in (accounts.analyst, accounts.dataset):
        account.epsilon_spent = account.epsilon_spent + epsilon
        account.save(update_fields=["epsilon_spent", "epsilon_limit", "updated_at"])


def budget_summary(accounts: Accounts) -> dict:
    def one(account: BudgetAccount) -> dict:
        return {
            "limit": float(account.epsilon_limit),
            "spent": float(account.epsilon_spent),
            "remaining": float(max(account.epsilon_limit - account.epsilon_spent, Decimal(0))),
        }

    return {
        "dataset": accounts.dataset.dataset,
        "period_start": accounts.analyst.period_start.isoformat(),
        "period_end": accounts.analyst.period_end.isoformat(),
        "analyst": one(accounts.analyst),
        "global": one(accounts.dataset),
    }
