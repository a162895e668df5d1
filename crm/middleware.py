"""Middleware of the composition root."""

from __future__ import annotations

from django.http import HttpResponseBadRequest, JsonResponse

from crm import health
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
