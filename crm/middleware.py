"""Middleware of the composition root."""

from __future__ import annotations

import threading

from django.conf import settings
from django.http import Http404, HttpResponseBadRequest, JsonResponse

from crm import health, views
from crm.api import error_body


class ProbeMiddleware:
    """Answer /healthz and /readyz before host validation: load balancers and container health
    checks call them by IP or ``localhost``, which ``ALLOWED_HOSTS`` rightly does not list."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method == "GET" and request.path_info in ("/healthz", "/readyz"):
            return (
                health.healthz(request)
                if request.path_info == "/healthz"
                else health.readyz(request)
            )
        return self.get_response(request)


class RejectNulMiddleware:
    """A NUL character in the path, query, headers or a dashboard form is refused with a 400:
    PostgreSQL cannot store it in text, and no honest client sends one. (API bodies are JSON, and
    crm.api.JSONParser refuses NUL there; reading them here would consume DRF's stream. Multipart
    bodies are left to their views, which may need their own upload handlers.)"""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            "\x00" in request.path
            or "%00" in request.META.get("QUERY_STRING", "")
            or any(
                "\x00" in str(value)
                for key, value in request.META.items()
                if key.startswith("HTTP_")
            )
        ):
            message = "The request contains a NUL character."
            if request.path.startswith("/api/"):
                return JsonResponse(error_body(400, message, code="malformed"), status=400)
            return HttpResponseBadRequest(message)
        if (
            request.method == "POST"
            and not request.path.startswith("/api/")
            and request.content_type == "application/x-www-form-urlencoded"
        ) and any("\x00" in v for values in request.POST.lists() for v in values[1]):
            return HttpResponseBadRequest("The form contains a NUL character.")
        return self.get_response(request)


class ErrorPageMiddleware:
    """The project's own 404 page with ``DEBUG`` on too (``make run``), and error pages that
    give back what they borrowed (``crm.views.REQUEST_THREAD``).

    With ``DEBUG`` off Django answers a 404 with ``handler404`` (``crm.views.page_not_found``);
    with it on, with its technical page, which lists every route of the site. Here an ``Http404``
    a view raises gets the project's page, and so does a path no route matched (Django's
    technical 404 for it is replaced: no view ran, so ``request.resolver_match`` is unset).
    Tracebacks (500, a 400 from a suspicious request) keep Django's debug page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        setattr(request, views.REQUEST_THREAD, threading.get_ident())
        response = self.get_response(request)
        if (
            settings.DEBUG
            and response.status_code == 404
            and getattr(request, "resolver_match", None) is None
        ):
            return views.page_not_found(request)
        return response

    def process_exception(self, request, exception):
        if settings.DEBUG and isinstance(exception, Http404):
            return views.page_not_found(request, exception)
        return None
