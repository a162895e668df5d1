"""A response held against the API's own OpenAPI schema, as a generated client reads it
(Schemathesis' response checks, on a Django test client's response)."""

from __future__ import annotations

import functools
import json

import requests
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer


@functools.cache
def api_schema():
    document = SchemaGenerator().get_schema(request=None, public=True)
    return schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(document)))


def schema_disagreements(response, method: str, path: str) -> list[str]:
    """What the schema of ``method path`` (a template: ``/api/v1/tags/{id}/``) says that
    ``response`` (from Django's test client) contradicts; [] when they agree."""
    operation = api_schema()[path][method.upper()]
    answer = schemathesis.Response(
        status_code=response.status_code,
        headers={name.lower(): [value] for name, value in response.headers.items()},
        content=response.content,
        request=requests.Request(method.upper(), f"http://testserver{path}").prepare(),
        elapsed=0.0,
        verify=True,
    )
    try:
        operation.validate_response(answer)
    except BaseExceptionGroup as failures:
        return [str(failure) for failure in failures.exceptions]
    except AssertionError as failure:
        return [str(failure)]
    return []
