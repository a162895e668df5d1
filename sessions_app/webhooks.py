"""Inbound webhook views: verify, one INSERT, answer (``sessions_app.queue`` does the work).

- ``/webhooks/<provider>/<session uuid>/[<suffix>]``: one session's URL (Evolution's ``byEvents``
  adds a suffix such as ``messages-upsert``). GET answers Meta's subscription handshake.
- ``/webhooks/cloud_api/``: the installation-wide Cloud API URL, verified with ``META_APP_SECRET``;
  one POST may hold entries of several numbers (sessions, organizations): each goes to the session
  whose ``phone_number_id`` it names.

Bodies are read from the stream up to ``PARLEY_WEBHOOK_MAX_BYTES`` (a history sync is larger than
Django's form limit); CSRF does not apply (the signature is the authentication).

Under ASGI (production and the embedded server) ``Receiver`` serves these URLs ahead of Django's
handler: the same URL patterns and views, without the browser's middleware (sessions, CSRF,
locale, messages...) and request signals, none of which a provider's POST uses. Through Django's
full stack each delivery crossed from the event loop to a thread and back three times; here it
crosses once, for the verification and the INSERT. WSGI and the test client use the views as
ordinary Django views.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, get_resolver
from django.views.decorators.csrf import csrf_exempt

from crm.text import TooDeep, json_parsed
from sessions_app import queue
from sessions_app.models import WhatsAppSession
from sessions_app.providers.base import InboundRequest, hmac_sha256_matches, secret_matches

logger = logging.getLogger(__name__)


class TooLarge(Exception):
    pass


def _read(request: HttpRequest) -> bytes:
    limit = int(settings.PARLEY_WEBHOOK_MAX_BYTES)
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge
    data = request.read(limit + 1)
    if len(data) > limit:
        raise TooLarge
    return data


def _inbound(request: HttpRequest, body: bytes, suffix: str = "") -> InboundRequest:
    headers = {k.lower(): v for k, v in request.headers.items()}
    return InboundRequest(
        method=request.method or "POST",
        headers=headers,
        body=body,
        query={k: request.GET.get(k, "") for k in request.GET},
        suffix=suffix,
    )


@csrf_exempt
async def session_webhook(
    request: HttpRequest, provider: str, session_uuid, suffix: str = ""
) -> HttpResponse:
    """Async, with the work in a thread of its own: a worker process keeps many deliveries in
    flight while each waits for its INSERT to be durable (Django would otherwise run every sync
    view of a process in one thread, one commit at a time)."""
    if request.method not in ("GET", "POST"):
        return HttpResponse(status=405)
    try:
        body = _read(request) if request.method == "POST" else b""
    except TooLarge:
        return HttpResponse("too large", status=413, content_type="text/plain")
    inbound = _inbound(request, body, suffix)
    answer = await sync_to_async(_receive, thread_sensitive=False)(provider, session_uuid, inbound)
    return HttpResponse(answer.body, status=answer.status, content_type="text/plain")


def _receive(provider: str, session_uuid, inbound: InboundRequest) -> queue.Answer:
    try:
        return queue.receive_at(provider, session_uuid, inbound)
    finally:
        _release()


def _release() -> None:
    """This executor thread keeps a pooled connection for its next delivery (taking it from the
    pool and back each time costs a quarter of the throughput); without a pool, or after an
    error, the connection is closed."""
    if connection.errors_occurred or not connection.settings_dict.get("OPTIONS", {}).get("pool"):
        connection.close()


@csrf_exempt
async def cloud_api_app_webhook(request: HttpRequest) -> HttpResponse:
    """Meta's app-level URL: routed to sessions by ``metadata.phone_number_id``."""
    if request.method == "GET":
        token = request.GET.get("hub.verify_token")
        if request.GET.get("hub.mode") == "subscribe" and secret_matches(
            settings.META_VERIFY_TOKEN or "", token
        ):
            return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain")
        return HttpResponse(status=403)
    if request.method != "POST":
        return HttpResponse(status=405)
    try:
        body = _read(request)
    except TooLarge:
        return HttpResponse("too large", status=413, content_type="text/plain")
    if not hmac_sha256_matches(
        settings.META_APP_SECRET or "",
        body,
        request.headers.get("X-Hub-Signature-256"),
        prefix="sha256=",
    ):
        logger.warning("app-level Cloud API webhook refused: bad signature")
        return HttpResponse(status=401)
    try:
        payload = json_parsed(body)
    except ValueError as exc:
        reason = str(exc) if isinstance(exc, TooDeep) else "not JSON"
        return HttpResponse(reason, status=400, content_type="text/plain")
    await sync_to_async(_route_app_payload, thread_sensitive=False)(payload)
    return HttpResponse("ok", content_type="text/plain")


def _route_app_payload(payload) -> None:
    try:
        _route(payload)
    finally:
        _release()


def _route(payload) -> None:
    from sessions_app import providers

    split = providers.get("cloud_api").split_by_phone_number_id(payload)
    routed = _sessions_by_phone_number_id(list(split))
    for phone_number_id, part in split.items():
        session = routed.get(phone_number_id)
        if session is None:
            logger.warning("Cloud API webhook for unknown phone_number_id %s", phone_number_id)
            continue
        part_body = json.dumps(part, separators=(",", ":")).encode()
        inbound = InboundRequest(method="POST", headers={}, body=part_body)
        queue.store(session=session, request=inbound, body=part_body.decode())


def _sessions_by_phone_number_id(ids: list[str]) -> dict[str, WhatsAppSession]:
    sessions = WhatsAppSession.objects.filter(provider="cloud_api", external_id__in=ids)
    return {session.external_id: session for session in sessions}


class Receiver:
    """ASGI: a request under ``/webhooks/`` that resolves to an async view is answered by that
    view directly; everything else goes to ``app`` (Django's handler)."""

    prefix = "/webhooks/"

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        match = None
        if scope["type"] == "http" and scope.get("path", "").startswith(self.prefix):
            with contextlib.suppress(Resolver404):
                match = get_resolver().resolve(scope["path"])
        if match is None or not inspect.iscoroutinefunction(match.func):
            return await self.app(scope, receive, send)  # Django's 404 page and its logging
        body = await _body(receive, int(settings.PARLEY_WEBHOOK_MAX_BYTES))
        if body is None:
            response = HttpResponse("too large", status=413, content_type="text/plain")
        else:
            try:
                response = await match.func(
                    ASGIRequest(scope, io.BytesIO(body)), *match.args, **match.kwargs
                )
            except Exception:
                logger.exception("webhook %s failed", match.url_name)
                response = HttpResponse(status=500)
        content = response.content
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.items()]
        headers.append((b"content-length", str(len(content)).encode()))  # not chunked
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": headers}
        )
        await send({"type": "http.response.body", "body": content})


async def _body(receive, limit: int) -> bytes | None:
    """The request body, or None once it passes ``limit`` bytes (the rest is not read)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)
