"""The customer consent portal: server-rendered pages that work without JavaScript.

Flow: a single-use link (/portal/open/<token>) is consumed, a short session starts with a new
session key, and the browser is redirected to /portal/ (no token in the address bar, history or
Referer). Every page checks the session's absolute expiry. Changes are POST forms with CSRF.
"""

from __future__ import annotations

import time
import uuid
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from cdp.actor import Actor, PermissionDenied
from cdp.models import Profile, ProfileStatus
from consent import portal_text
from consent.portal import portal_close, portal_consent_change, portal_overview, portal_request_create
from consent.services import ConsentError, PortalLinkRefused, portal_actor, portal_link_consume
from privacy.crypto import keyed_hash

SESSION_SUBJECT = "portal_subject"
SESSION_EXPIRES = "portal_expires"
REFUSAL_KEYS = {"used": "refused_used", "expired": "refused_expired", "session": "refused_session"}


def portal_page(view):
    """Portal response headers. Referrer-Policy `same-origin` rather than the site-wide
    `no-referrer`: with `no-referrer` Chromium sends `Origin: null` on form posts and Django's
    CSRF origin check refuses them; `same-origin` still sends nothing to other sites."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response["Referrer-Policy"] = "same-origin"
        return response

    return wrapped


def _lang(request: HttpRequest) -> str:
    return portal_text.language_of(getattr(request, "LANGUAGE_CODE", "en"))


def _client_hash(request: HttpRequest) -> str:
    return keyed_hash(domain="client_addr", value=request.META.get("REMOTE_ADDR", ""))


def _context(request: HttpRequest, **extra) -> dict:
    lang = _lang(request)
    return {"lang": lang, "t": portal_text.TEXT[lang], "languages": settings.LANGUAGES, **extra}


def _refused(request: HttpRequest, reason: str, *, status: int = 410) -> HttpResponse:
    context = _context(request)
    context["message"] = context["t"][REFUSAL_KEYS.get(reason, "refused_invalid")]
    response = render(request, "consent/refused.html", context, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _session_actor(request: HttpRequest) -> tuple[Actor, uuid.UUID] | None:
    """The portal actor of a live session, or None (ended, expired, or subject gone)."""
    raw, expires = request.session.get(SESSION_SUBJECT), request.session.get(SESSION_EXPIRES, 0)
    if not raw or time.time() >= expires:
        if raw:
            request.session.flush()
        return None
    subject_id = uuid.UUID(raw)
    if not Profile.objects.filter(pk=subject_id, status=ProfileStatus.ACTIVE).exists():
        request.session.flush()
        return None
    actor = portal_actor(subject_id=subject_id, client_hash=_client_hash(request), request_id=request.request_id)
    return actor, subject_id


@portal_page
@never_cache
@require_GET
def portal_open(request: HttpRequest, token: str) -> HttpResponse:
    """Consume the link and start the session; any failure is a friendly refusal page."""
    try:
        subject_id = portal_link_consume(
            token=token, client_hash=_client_hash(request), request_id=getattr(request, "request_id", "")
        )
    except PortalLinkRefused as refusal:
        return _refused(request, refusal.reason)
    request.session.cycle_key()  # a fresh session id: no fixation from before the link
    request.session[SESSION_SUBJECT] = str(subject_id)
    request.session[SESSION_EXPIRES] = time.time() + settings.SESSION_COOKIE_AGE
    request.session.set_expiry(settings.SESSION_COOKIE_AGE)
    return redirect("portal:home")


@portal_page
@never_cache
@require_GET
def portal_home(request: HttpRequest) -> HttpResponse:
    session = _session_actor(request)
    if session is None:
        return _refused(request, "session", status=403)
    actor, subject_id = session
    lang = _lang(request)
    data = portal_overview(actor=actor, subject_id=subject_id, language=lang)
    for row in data["purposes"]:
        row["state_label"] = portal_text.STATES[lang][row["state"]]
        row["history_rows"] = [
            {
                "when": record.occurred_at,
                "event": portal_text.EVENTS[lang].get(record.event, record.event),
                "method": portal_text.METHODS[lang].get(record.method, record.method),
                "version": record.policy_version_number,
            }
            for record in row["history"]
        ]
    categories = [portal_text.CATEGORIES[lang].get(c, c) for c in data["categories"]]
    requests = [
        {
            "type": portal_text.REQUEST_TYPES[lang][r.type],
            "status": portal_text.REQUEST_STATUSES[lang][r.status],
            "received_at": r.received_at,
            "due_at": r.due_at,
        }
        for r in data["requests"]
    ]
    context = _context(request, purposes=data["purposes"], categories=categories, requests=requests)
    return render(request, "consent/portal.html", context)


@portal_page
@never_cache
@require_POST
def portal_consent(request: HttpRequest) -> HttpResponse:
    """One toggle: grant or withdraw one purpose."""
    session = _session_actor(request)
    if session is None:
        return _refused(request, "session", status=403)
    actor, subject_id = session
    t = portal_text.TEXT[_lang(request)]
    code = request.POST.get("purpose", "")[:64]
    action = request.POST.get("action", "")
    if action not in ("grant", "withdraw"):
        messages.error(request, t["change_failed"])
        return redirect("portal:home")
    try:
        record = portal_consent_change(
            actor=actor,
            subject_id=subject_id,
            purpose=code,
            grant=action == "grant",
            language=_lang(request),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:512],
            ip_address=request.META.get("REMOTE_ADDR", ""),
        )
    except ConsentError as exc:
        messages.error(request, t["guardian_required"] if exc.code == "guardian_required" else t["change_failed"])
        return redirect("portal:home")
    name = record.purpose.name_zh if _lang(request) == "zh-hans" else record.purpose.name_en
    messages.success(request, t["saved_granted" if action == "grant" else "saved_withdrawn"].format(name=name))
    return redirect(f"{reverse('portal:home')}#purpose-{record.purpose.code}")


@portal_page
@never_cache
@require_POST
def portal_request(request: HttpRequest) -> HttpResponse:
    """Ask for a copy or erasure: recorded as a data-subject request, shown as received."""
    session = _session_actor(request)
    if session is None:
        return _refused(request, "session", status=403)
    actor, subject_id = session
    t = portal_text.TEXT[_lang(request)]
    try:
        created = portal_request_create(actor=actor, subject_id=subject_id, request_type=request.POST.get("type", ""))
    except (PermissionDenied, ValueError):
        messages.error(request, t["change_failed"])
        return redirect("portal:home")
    due = formats.date_format(timezone.localtime(created.due_at), "DATE_FORMAT")
    messages.success(request, t["request_saved"].format(due=due))
    return redirect(f"{reverse('portal:home')}#requests")


@portal_page
@never_cache
@require_POST
def portal_logout(request: HttpRequest) -> HttpResponse:
    session = _session_actor(request)
    if session is not None:
        portal_close(actor=session[0], subject_id=session[1])
    request.session.flush()
    context = _context(request)
    return render(request, "consent/signed_out.html", context)
