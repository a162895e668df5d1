"""API plumbing shared by every app: one error body, strict input, cursor pages, bounded bodies.

Every 4xx answers ``{"error": {"code": ..., "message": ..., "fields": {...}}}``.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, pagination, parsers, renderers, serializers, status
from rest_framework.response import Response

from crm.errors import ApplicationError
from crm.text import has_nul, json_parsed

STATUS_CODES = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "throttled",
}


def error_body(
    status_code: int, message: str, *, code: str | None = None, fields: dict | None = None
) -> dict:
    return {
        "error": {
            "code": code or STATUS_CODES.get(status_code, "error"),
            "message": message,
            "fields": fields or {},
        }
    }


def _flatten(detail) -> dict[str, list[str]]:
    """DRF's nested error detail → ``{"field": ["message", ...]}`` (nested paths joined by dots)."""
    out: dict[str, list[str]] = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif (
            isinstance(value, list)
            and value
            and all(not isinstance(v, (dict, list)) for v in value)
        ):
            out.setdefault(prefix or "non_field_errors", []).extend(str(v) for v in value)
        elif isinstance(value, list):
            for index, inner in enumerate(value):
                walk(f"{prefix}.{index}" if prefix else str(index), inner)
        else:
            out.setdefault(prefix or "non_field_errors", []).append(str(value))

    walk("", detail)
    return out


def exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, ApplicationError | exceptions.APIException):
        return None
    request = context.get("request")
    if request is not None:  # the error body is JSON, also to a client that asked for a PNG or CSV
        request.accepted_renderer = renderers.JSONRenderer()
        request.accepted_media_type = "application/json"
    if isinstance(exc, ApplicationError):
        return Response(
            error_body(exc.status, exc.message, code=exc.code, fields=exc.fields), status=exc.status
        )
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        message = "Some fields are not valid."
        if list(fields) == ["non_field_errors"]:
            message = fields["non_field_errors"][0]
        body = error_body(exc.status_code, message, code="invalid", fields=fields)
    else:
        detail = exc.detail
        message = str(detail) if not isinstance(detail, (dict, list)) else "Request refused."
        code = getattr(exc, "default_code", None)
        if code in {"error", None} or (exc.status_code in STATUS_CODES and code == "invalid"):
            code = STATUS_CODES.get(exc.status_code)
        if isinstance(exc, exceptions.ParseError):
            code = "malformed"
        body = error_body(exc.status_code, message, code=code)
    return Response(body, status=exc.status_code, headers=headers)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


class JSONParser(parsers.JSONParser):
    """JSON with a size cap (DRF reads the stream directly, past Django's body limit)."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        length = request.META.get("CONTENT_LENGTH") if request is not None else None
        if length and str(length).isascii() and str(length).isdigit() and int(length) > limit:
            raise PayloadTooLarge()
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge()
        if not raw.strip():
            return {}
        try:
            data = json_parsed(
                raw.decode((parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET)
            )
        except ValueError as exc:
            raise exceptions.ParseError(f"Malformed JSON: {exc}") from None
        if has_nul(data):
            raise exceptions.ParseError("Text may not contain NUL (\\u0000) characters.")
        return data


class StrictSerializer(serializers.Serializer):
    """Input serializer that refuses unknown and read-only fields instead of ignoring them.

    Mass assignment (``organization``, ``id``, ``created_by``, one's own ``role``) is never silently
    accepted: the client is told the field cannot be written.
    """

    def to_internal_value(self, data):
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            extra = [key for key in data if key not in writable]
            if extra:
                raise serializers.ValidationError(
                    {
                        key: ["This field cannot be written."]
                        if key in self.fields
                        else ["Unknown field."]
                        for key in extra
                    }
                )
        return super().to_internal_value(data)


class CursorPagination(pagination.CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    page_size_query_description = "Results per page: 1 or more (default 50, at most 200)."
    ordering = "-id"

    def get_page_size(self, request) -> int:
        """``page_size`` as asked, capped at ``max_page_size``; anything but a whole number of 1 or
        more is refused (DRF would silently use the default)."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        text = raw.strip()
        if not (text.isascii() and text.isdigit()) or not text.strip("0"):
            raise exceptions.ValidationError(
                {self.page_size_query_param: ["A whole number, 1 or more."]}
            )
        if len(text) > 9:  # far past the cap (and int() refuses thousands of digits)
            return self.max_page_size
        return min(int(text), self.max_page_size)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"]["minimum"] = 1
        return parameters

    def paginate_queryset(self, queryset, request, view=None):
        """A forged or stale cursor is the client's mistake (404 with the error body), not a 500."""
        try:
            return super().paginate_queryset(queryset, request, view)
        except (ValueError, TypeError, OverflowError, DjangoValidationError, DataError):
            raise exceptions.NotFound(self.invalid_cursor_message) from None

    def get_ordering(self, request, queryset, view):
        ordering = getattr(view, "ordering", None) or self.ordering
        return (ordering,) if isinstance(ordering, str) else tuple(ordering)


def api_error_response(request, status_code: int, message: str) -> JsonResponse:
    return JsonResponse(error_body(status_code, message), status=status_code)
