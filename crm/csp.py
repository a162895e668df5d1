"""The Content-Security-Policy of every response.

Scripts and styles come from our own static files only: no inline ``<script>``, no ``style=``
attribute, no ``eval``. Images and media come from us, from ``data:`` URLs (the pairing QR code)
and from the media storage (on S3, the media API redirects to a short-lived signed URL there).
Sockets go to the page's own host. Nobody may frame a page.

A view may answer with a policy of its own (``with_policy``); the middleware leaves a response
that already carries one alone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from django.core.exceptions import DisallowedHost
from django.core.files.storage import storages

HEADER = "Content-Security-Policy"
SELF = "'self'"
NONE = "'none'"

Policy = Mapping[str, tuple[str, ...]]

POLICY: Policy = {
    "default-src": (SELF,),
    "script-src": (SELF,),
    "style-src": (SELF,),
    "img-src": (SELF, "data:"),
    "media-src": (SELF,),
    "connect-src": (SELF,),
    "frame-ancestors": (NONE,),
    "object-src": (NONE,),
    "base-uri": (SELF,),
    "form-action": (SELF,),
}

# drf-spectacular's Swagger UI and Redoc (/api/v1/docs/, /api/v1/redoc/): their scripts are ours
# (the sidecar's files, and the split view serves Swagger's init script as a file), but both
# libraries write inline styles, Swagger UI shows data: icons and Redoc runs a blob: worker.
API_DOCS_POLICY: Policy = {
    **POLICY,
    "style-src": (SELF, "'unsafe-inline'"),
    "worker-src": (SELF, "blob:"),
}


@functools.lru_cache(maxsize=8)
def _storage_origin(storage) -> str | None:
    """The origin media is served from when it is not us (S3's signed URLs), else None."""
    if not hasattr(storage, "bucket_name"):
        return None
    url = urlsplit(storage.url("csp-origin-probe"))  # a local signature: no request is made
    return f"{url.scheme}://{url.netloc}"


def header_value(policy: Policy, request) -> str:
    directives = {name: list(sources) for name, sources in policy.items()}
    media_origin = _storage_origin(storages["default"])
    if media_origin:
        for name in ("img-src", "media-src"):
            directives[name] = [*directives.get(name, [SELF]), media_origin]
    try:  # validated against ALLOWED_HOSTS: no separators can slip in
        host = request.get_host() if request is not None else None
    except DisallowedHost:  # the health probes answer before host validation
        host = None
    if host:
        # CSP3 lets 'self' match ws(s): of the same host; older browsers need the origin named.
        directives["connect-src"] = [*directives["connect-src"], f"ws://{host}", f"wss://{host}"]
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def with_policy(policy: Policy) -> Callable:
    """Decorate a view so its responses carry ``policy`` instead of the default."""

    def decorate(view):
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            response = view(request, *args, **kwargs)
            response[HEADER] = header_value(policy, request)
            return response

        return wrapped

    return decorate


class ContentSecurityPolicyMiddleware:
    """Give every response the default policy unless its view gave it one."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if HEADER not in response:
            response[HEADER] = header_value(POLICY, request)
        return response
