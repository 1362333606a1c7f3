"""The staff-only compliance page (HTML): activity chart, last verification, export links.

Staff sign in through the Django admin login; the page acts as a compliance Actor of kind
`staff` (actor id `staff:<user id>`), so every export or verification it triggers is audited
like one made with an API key.
"""

from __future__ import annotations

import json

from django.contrib.auth.decorators import user_passes_test
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from cdp.actor import Actor, ActorKind, Role
from privacy.audit.export import (
    FORMATS,
    AuditExportError,
    ExportStats,
    audit_export_plan,
    export_chunks,
    export_manifest,
)
from privacy.audit.ropa import ROPA_FORMATS, records_of_processing, ropa_csv
from privacy.audit.selectors import audit_activity, audit_chain_summary, audit_last_verification
from privacy.audit.verify import audit_verify
from privacy.crypto import keyed_hash

staff_required = user_passes_test(lambda u: u.is_active and u.is_staff, login_url="admin:login")

PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"]
OTHER_COLOR = "#bab0ac"
CHART_W, CHART_H, PAD_L, PAD_B, PAD_T = 720, 240, 44, 28, 10


def staff_actor(request: HttpRequest) -> Actor:
    return Actor(
        kind=ActorKind.STAFF,
        actor_id=f"staff:{request.user.pk}",
        role=Role.COMPLIANCE,
        request_id=getattr(request, "request_id", ""),
        client_hash=keyed_hash(domain="client_addr", value=request.META.get("REMOTE_ADDR", "")),
    )


def activity_chart(activity: dict) -> dict:
    """A stacked bar chart (one bar per day, one colour per action) as SVG geometry."""
    dates, counts = activity["dates"], activity["counts"]
    totals = sorted(counts, key=lambda a: -sum(counts[a].values()))
    shown, rest = totals[: len(PALETTE)], totals[len(PALETTE) :]
    series = [(a, PALETTE[i], counts[a]) for i, a in enumerate(shown)]
    if rest:
        other: dict = {}
        for action in rest:
            for day, n in counts[action].items():
                other[day] = other.get(day, 0) + n
        series.append(("other", OTHER_COLOR, other))
    day_totals = [sum(s[2].get(d, 0) for s in series) for d in dates]
    peak = max(day_totals, default=0) or 1
    plot_h = CHART_H - PAD_B - PAD_T
    slot = (CHART_W - PAD_L) / max(len(dates), 1)
    bar_w = max(slot * 0.7, 1)
    bars, labels = [], []
    for i, day in enumerate(dates):
        x = PAD_L + i * slot + (slot - bar_w) / 2
        y = CHART_H - PAD_B
        for action, color, per_day in series:
            n = per_day.get(day, 0)
            if not n:
                continue
            h = n / peak * plot_h
            y -= h
            bars.append(
                {
                    "x": round(x, 1),
                    "y": round(y, 1),
                    "w": round(bar_w, 1),
                    "h": round(h, 1),
                    "color": color,
                    "title": f"{day.isoformat()} {action}: {n}",
                }
            )
        if i % max(len(dates) // 7, 1) == 0:
            labels.append({"x": round(x + bar_w / 2, 1), "text": day.strftime("%m-%d")})
    return {
        "width": CHART_W,
        "height": CHART_H,
        "bars": bars,
        "labels": labels,
        "legend": [{"action": a, "color": c, "total": sum(d.values())} for a, c, d in series],
        "peak": peak,
        "axis_y": CHART_H - PAD_B,
        "pad_left": PAD_L,
        "label_y": CHART_H - 8,
    }


@require_GET
@staff_required
def compliance_home(request: HttpRequest) -> HttpResponse:
    days = 14
    verification = audit_last_verification()
    context = {
        "chart": activity_chart(audit_activity(days=days)),
        "days": days,
        "verification": verification,
        "summary": audit_chain_summary(),
        "export_formats": sorted(FORMATS),
        "ropa_formats": ROPA_FORMATS,
    }
    return render(request, "privacy/compliance.html", context)


@require_POST
@staff_required
def compliance_verify(request: HttpRequest) -> HttpResponse:
    audit_verify(actor=staff_actor(request))
    return redirect("compliance")


def _to_seq(request: HttpRequest) -> int | None:
    raw = request.GET.get("to_seq", "")
    return int(raw) if raw.isdigit() else None


def _export_plan(request: HttpRequest, fmt: str):
    """The export plan for the staff downloads, or the plain-text error response to send."""
    if fmt not in FORMATS:
        return HttpResponse("unknown format", status=404, content_type="text/plain")
    try:
        return audit_export_plan(actor=staff_actor(request), fmt=fmt, to_seq=_to_seq(request))
    except AuditExportError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")


@require_GET
@staff_required
def compliance_export(request: HttpRequest, fmt: str) -> HttpResponse:
    plan = _export_plan(request, fmt)
    if isinstance(plan, HttpResponse):
        return plan
    response = StreamingHttpResponse(export_chunks(plan), content_type=plan.content_type)
    response["Content-Disposition"] = f'attachment; filename="{plan.filename}"'
    return response


@require_GET
@staff_required
def compliance_export_manifest(request: HttpRequest, fmt: str) -> HttpResponse:
    plan = _export_plan(request, fmt)
    if isinstance(plan, HttpResponse):
        return plan
    stats = ExportStats()
    for _ in export_chunks(plan, stats):
        pass
    body = json.dumps(export_manifest(plan, stats), indent=2, ensure_ascii=False)
    response = HttpResponse(body, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{plan.filename}.manifest.json"'
    return response


@require_GET
@staff_required
def compliance_ropa(request: HttpRequest, fmt: str) -> HttpResponse:
    if fmt not in ROPA_FORMATS:
        return HttpResponse("unknown format", status=404, content_type="text/plain")
    body = records_of_processing(actor=staff_actor(request), fmt=fmt)
    if fmt == "csv":
        response = HttpResponse(ropa_csv(body["records"]), content_type="text/csv; charset=utf-8")
    else:
        response = HttpResponse(json.dumps(body, indent=2, ensure_ascii=False), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="records-of-processing.{fmt}"'
    return response
