"""How much of a request body Parley reads: the one place request sizes are limited.

Under ASGI, Django reads (and past ``FILE_UPLOAD_MAX_MEMORY_SIZE`` spools to disk) the whole body
before any middleware, authentication or upload handler runs. ``BodyLimit`` wraps Django's
application and counts what ``receive`` returns instead:

- every route reads at most ``PARLEY_REQUEST_MAX_BYTES`` (forms and JSON: Django's
  ``DATA_UPLOAD_MAX_MEMORY_SIZE`` plus room for the multipart envelope);
- a route that takes files declares its own cap with ``@accepts_uploads("<setting name>")`` on
  its handler (a view function, a class-based view's method, a DRF action), and gets it only once
  the request carries a usable API key or a signed-in session: an anonymous request never costs
  more than the small cap, whatever the route.

A declared ``Content-Length`` over the cap is refused before one byte is read; a chunked body is
refused the moment its count passes the cap (Django is told the client went away, and the 413 is
answered here). ``/webhooks/`` never reaches this: ``sessions_app.webhooks.Receiver`` counts
provider deliveries against ``PARLEY_WEBHOOK_MAX_BYTES`` itself.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from http.cookies import SimpleCookie

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.template.loader import render_to_string
from django.urls import Resolver404, get_resolver
from django.utils.translation import gettext as _

from crm import csp
from crm.api import error_body

UPLOAD_LIMIT_ATTRIBUTE = "parley_upload_limit_setting"


def accepts_uploads(setting: str) -> Callable:
    """Mark a handler as taking files of up to ``settings.<setting>`` bytes (from members)."""

    def mark(handler: Callable) -> Callable:
        setattr(handler, UPLOAD_LIMIT_ATTRIBUTE, setting)
        return handler

    return mark


def request_max_bytes() -> int:
    return int(settings.PARLEY_REQUEST_MAX_BYTES)


def upload_limit(path: str, method: str) -> int | None:
    """The upload cap of the handler ``method path`` reaches, or None (not an upload route)."""
    try:
        match = get_resolver().resolve(path)
    except Resolver404:
        return None
    view = match.func
    view_class = getattr(view, "cls", None) or getattr(view, "view_class", None)
    actions = getattr(view, "actions", None)  # a DRF viewset route: {"post": "upload"}
    if actions:
        handler = getattr(view_class, actions.get(method.lower(), ""), None)
    elif view_class is not None:
        handler = getattr(view_class, method.lower(), None)
    else:
        handler = view
    setting = getattr(handler, UPLOAD_LIMIT_ATTRIBUTE, None)
    return int(getattr(settings, setting)) if setting else None


def credentialed(headers: dict[bytes, bytes]) -> bool:
    """Whether a request carries a usable API key or the session of an active, signed-in user
    (the view still checks roles and organizations: this only decides how much to read)."""
    from accounts.services import api_key_authenticate

    try:
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _sep, raw = authorization.partition(" ")
        if scheme.lower() == "bearer":
            return api_key_authenticate(raw.strip()) is not None
        cookies = SimpleCookie()
        with contextlib.suppress(Exception):
            cookies.load(headers.get(b"cookie", b"").decode("latin-1"))
        morsel = cookies.get(settings.SESSION_COOKIE_NAME)
        return morsel is not None and _signed_in(morsel.value)
    finally:
        connections.close_all()  # this thread's only: the executor's threads are not Django's


def _signed_in(session_key: str) -> bool:
    from importlib import import_module

    from django.contrib.auth import SESSION_KEY, get_user_model

    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user_id = store.get(SESSION_KEY)
    if user_id is None:
        return False
    return get_user_model()._default_manager.filter(pk=user_id, is_active=True).exists()


class BodyLimit:
    """ASGI middleware around Django's application (see the module's docstring)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        limit = request_max_bytes()
        declared = _content_length(headers)
        raised = False  # whether ``limit`` is already the route's own

        async def route_limit() -> int:
            upload = upload_limit(scope["path"], scope["method"])
            if upload is None or upload <= limit:
                return limit
            if await sync_to_async(credentialed, thread_sensitive=False)(headers):
                return upload
            return limit

        if declared is not None and declared > limit:
            limit, raised = await route_limit(), True
            if declared > limit:
                return await _refuse(scope, send, limit)

        seen = 0
        over = False

        async def counted():
            nonlocal seen, over, limit, raised
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit and not raised:
                    limit, raised = await route_limit(), True
                if seen > limit:
                    over = True
                    return {"type": "http.disconnect"}  # Django stops reading and answers nothing
            return message

        await self.app(scope, counted, send)
        if over:
            await _refuse(scope, send, limit)


def _content_length(headers: dict[bytes, bytes]) -> int | None:
    value = headers.get(b"content-length", b"").strip()
    return int(value) if value.isdigit() else None


def _megabytes(limit: int) -> str:
    value = limit / 1_048_576
    return f"{value:.1f}".removesuffix(".0") if value < 10 else f"{value:.0f}"


async def _refuse(scope, send, limit: int) -> None:
    message = _("The request is too large: at most %(mb)s MB here.") % {"mb": _megabytes(limit)}
    if scope["path"].startswith("/api/"):
        body = json.dumps(error_body(413, message, code="too_large")).encode()
        content_type = b"application/json"
    else:
        html = await sync_to_async(render_to_string, thread_sensitive=False)(
            "error.html", {"status": 413, "message": message}
        )
        body, content_type = html.encode(), b"text/html; charset=utf-8"
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),  # the rest of the body is never read
        (csp.HEADER.lower().encode(), csp.header_value(csp.POLICY, None).encode()),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
