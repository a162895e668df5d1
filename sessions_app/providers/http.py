"""The HTTP transport every gateway provider uses: bounded in time and size, errors mapped.

``call`` returns parsed JSON (or raw bytes). It raises ``NetworkError`` for a connection failure,
a timeout, a 5xx, a response over ``max_bytes`` or a body that is not JSON; a 4xx is handed to the
provider's ``on_error`` (which knows what the provider's codes mean) and, if that returns nothing,
becomes a ``ProviderError``. Credentials travel only in headers the caller passes; nothing here
logs a header or a body.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from sessions_app.providers.base import NetworkError, ProviderError

MAX_RESPONSE_BYTES = 5 * 1024 * 1024
MAX_MEDIA_BYTES = 100 * 1024 * 1024

ErrorMapper = Callable[[int, Any], ProviderError | None]


def call(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    json_body: Any = None,
    data: Mapping[str, Any] | None = None,
    files: Any = None,
    auth: tuple[str, str] | None = None,
    timeout: float = 15.0,
    max_bytes: int = MAX_RESPONSE_BYTES,
    raw: bool = False,
    on_error: ErrorMapper | None = None,
) -> Any:
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False) as client,
            client.stream(
                method,
                url,
                headers=dict(headers or {}),
                params=params,
                json=json_body,
                data=data,
                files=files,
                auth=auth,
            ) as response,
        ):
            content = _read_capped(response, max_bytes)
            status = response.status_code
            content_type = response.headers.get("content-type", "")
    except httpx.TimeoutException as exc:
        raise NetworkError(
            "The provider did not answer in time.", detail=type(exc).__name__
        ) from exc
    except httpx.HTTPError as exc:
        raise NetworkError("Could not reach the provider.", detail=type(exc).__name__) from exc
    if status >= 500:
        raise NetworkError(f"The provider failed (HTTP {status}).", detail=_snippet(content))
    if raw and status < 400:
        return content, content_type
    payload = _parse(content)
    if status >= 400:
        mapped = on_error(status, payload) if on_error else None
        raise mapped or ProviderError(
            f"The provider refused the request (HTTP {status}).", detail=_snippet(content)
        )
    if payload is _NOT_JSON:
        raise NetworkError("The provider answered something that is not JSON.")
    return payload


_NOT_JSON = object()


def _parse(content: bytes) -> Any:
    if not content.strip():
        return None
    try:
        return json.loads(content)
    except ValueError:
        return _NOT_JSON


def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise NetworkError("The provider's answer is too large.")
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise NetworkError("The provider's answer is too large.")
        chunks.append(chunk)
    return b"".join(chunks)


def _snippet(content: bytes) -> str:
    return content[:300].decode("utf-8", "replace")
