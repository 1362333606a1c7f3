"""Deadlines by jurisdiction: GDPR Art. 12(3) one month; PIPL practice 15 working days."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

from django.conf import settings


def add_months(moment: datetime, months: int) -> datetime:
    """The same day `months` later, clamped to the month's last day (31 Jan + 1 = 28/29 Feb)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def add_working_days(moment: datetime, days: int) -> datetime:
    """`days` Monday-to-Friday days later (public holidays are not modelled)."""
    current = moment
    left = days
    while left > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            left -= 1
    return current


def due_at_for(*, jurisdiction: str, received_at: datetime) -> datetime:
    """The response deadline for a request received at `received_at`."""
    rule = settings.CDP_DSAR_DEADLINES[jurisdiction]
    due = received_at
    if rule.get("months"):
        due = add_months(due, int(rule["months"]))
    if rule.get("working_days"):
        due = add_working_days(due, int(rule["working_days"]))
    if rule.get("days"):
        due = due + timedelta(days=int(rule["days"]))
    return due
