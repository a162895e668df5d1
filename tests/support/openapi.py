"""A response held against the API's own OpenAPI schema, as a generated client reads it
(Schemathesis' checks of status code, content type and body, on a Django test client's response)."""

from __future__ import annotations

import functools
import json
import re

import requests
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


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
        placeholders = {name: "0" for name in re.findall(r"\{(\w+)\}", path)}
        case = operation.Case(path_parameters=placeholders)
        case.validate_response(answer, checks=CHECKS)
    except BaseExceptionGroup as failures:
        return [str(failure) for failure in failures.exceptions]
    except AssertionError as failure:
        return [str(failure)]
    return []
