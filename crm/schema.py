"""The OpenAPI schema's house rules (drf-spectacular, /api/v1/schema/ and /api/v1/docs/): what a
client reads there is written for clients, and says what the API enforces."""

from __future__ import annotations

from drf_spectacular import openapi
from drf_spectacular.plumbing import get_lib_doc_excludes

from crm.api import StrictSerializer


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema, saying what a ``StrictSerializer`` enforces: no other fields."""

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "request" and isinstance(serializer, StrictSerializer):
            schema["additionalProperties"] = False
        return schema


ERROR_SCHEMA = {
    "type": "object",
    "description": "Every 4xx answer: a stable `code` for programs, a `message` for people, and "
    "what is wrong with each field (nested fields dotted: `settings.messages_burst`).",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "example": "invalid"},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
            "required": ["code", "message", "fields"],
        }
    },
    "required": ["error"],
}


def document_errors(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: every operation may answer 4xx with ``error_body``."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    error = {
        "description": "Refused: see `error.code` and `error.message`",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    for operations in result["paths"].values():
        for operation in operations.values():
            operation["responses"].setdefault("4XX", error)
    return result


def schema_doc_excludes() -> list[type]:
    """Classes whose docstrings never describe an endpoint or a schema (drf-spectacular's
    ``GET_LIB_DOC_EXCLUDES``): the libraries' own, and this project's bases, which are documented
    for its developers. A view or serializer is described by its own docstring only."""
    from accounts.tenancy import TenantAPIMixin

    return [*get_lib_doc_excludes(), TenantAPIMixin, StrictSerializer]
