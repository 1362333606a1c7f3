"""Small helpers shared by API views."""

from __future__ import annotations

from rest_framework.request import Request

from cdp.actor import Actor

PURPOSE_HEADER = "X-Purpose"


def request_actor(request: Request, *, purpose: str | None = None) -> Actor:
    """The authenticated Actor, with the purpose the caller declared (X-Purpose header or
    ?purpose=) unless the view passes one. Services decide whether a purpose is required."""
    actor: Actor = request.actor
    declared = (
        purpose
        if purpose is not None
        else (request.headers.get(PURPOSE_HEADER) or request.query_params.get("purpose", ""))
    )
    return actor.with_purpose(declared.strip()[:64]) if declared else actor
