"""The Django project and the customer core (sources, profiles, events, trait registry)."""

from cdp.celery import app as celery_app

__all__ = ["celery_app"]
