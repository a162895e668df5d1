"""Loopback HTTP servers that speak a provider's wire format, for transport tests.

A subclass (or an instance) declares a route table ``{(METHOD, path_regex): handler}``; a handler
gets a :class:`ProviderRequest` and returns ``(status, headers, body)`` where ``body`` is bytes, str,
or anything JSON-serializable. Every request received is recorded in ``server.requests``, and faults
can be injected per route: a status with a body, a delay, a malformed or oversized body, or a
connection closed without an answer.

    with ProviderServer({("POST", r"/v1/(?P<phone>\\d+)/messages"): send}) as server:
        server.fail("POST", r"/v1/.*/messages", status=503, times=1)
        ... client posts to f"{server.url}/v1/123/messages" ...
        assert server.requests[0].json == {...}

Handlers run in the server's threads: keep state in the server and guard it with ``server.lock``.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Response = tuple[int, dict[str, str], Any]
Handler = Callable[["ProviderRequest"], Response]
RouteKey = tuple[str, str]

MALFORMED_BODY = b'{"messages": [{"id": "wamid.'  # cut off mid-string: not JSON


@dataclass
class ProviderRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message  # case-insensitive .get()
    body: bytes
    groups: dict[str, str] = field(default_factory=dict)
    route: RouteKey | None = None

    @property
    def json(self) -> Any:
        """The body parsed as JSON, or ``None`` when it is empty or not JSON."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass
class Fault:
    """What to do instead of (or before) the handler for requests matching ``method``/``pattern``."""

    method: str
    pattern: str
    status: int | None = None
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    malformed: bool = False
    oversized: int = 0
    close: bool = False
    times: int | None = None  # None: every matching request; n: the next n ones

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and re.fullmatch(self.pattern, path) is not None


def encode_body(body: Any, headers: dict[str, str]) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        return body.encode()
    headers.setdefault("Content-Type", "application/json")
    return json.dumps(body).encode()


class ProviderServer:
    """``ThreadingHTTPServer`` on 127.0.0.1, a free port, in a daemon thread."""

    #: Subclasses declare their routes here; a handler may be a callable or a method name.
    routes: dict[RouteKey, Handler | str] = {}

    def __init__(self, routes: dict[RouteKey, Handler | str] | None = None) -> None:
        self.route_table: dict[RouteKey, Handler | str] = {**self.routes, **(routes or {})}
        self.requests: list[ProviderRequest] = []
        self.faults: list[Fault] = []
        self.lock = threading.RLock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> ProviderServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping on an injected delay
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> ProviderServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "start() the server first"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- routes and requests ------------------------------------------------------------------
    def add_route(self, method: str, pattern: str, handler: Handler | str) -> None:
        with self.lock:
            self.route_table[(method.upper(), pattern)] = handler

    def requests_to(self, method: str, pattern: str) -> list[ProviderRequest]:
        with self.lock:
            return [
                r
                for r in self.requests
                if r.method == method.upper() and re.fullmatch(pattern, r.path)
            ]

    def resolve(self, method: str, path: str) -> tuple[RouteKey, Handler, re.Match] | None:
        with self.lock:
            table = list(self.route_table.items())
        for key, handler in table:
            if key[0] != method:
                continue
            match = re.fullmatch(key[1], path)
            if match:
                if isinstance(handler, str):
                    handler = getattr(self, handler)
                return key, handler, match
        return None

    def not_found(self, request: ProviderRequest) -> Response:
        return 404, {}, {"error": {"message": f"no route for {request.method} {request.path}"}}

    # --- faults -------------------------------------------------------------------------------
    def inject(self, method: str, pattern: str, **fault: Any) -> Fault:
        """Add a fault for requests whose path fully matches ``pattern`` (see :class:`Fault`)."""
        item = Fault(method=method.upper(), pattern=pattern, **fault)
        with self.lock:
            self.faults.append(item)
        return item

    def fail(
        self, method: str, pattern: str, *, status: int = 500, body: Any = None, **kw
    ) -> Fault:
        if body is None:
            body = {"error": {"message": "injected failure", "code": status}}
        return self.inject(method, pattern, status=status, body=body, **kw)

    def delay(self, method: str, pattern: str, seconds: float, **kw) -> Fault:
        return self.inject(method, pattern, delay=seconds, **kw)

    def malformed(self, method: str, pattern: str, **kw) -> Fault:
        return self.inject(method, pattern, malformed=True, **kw)

    def oversized(self, method: str, pattern: str, size: int = 8 * 1024 * 1024, **kw) -> Fault:
        return self.inject(method, pattern, oversized=size, **kw)

    def close_connection(self, method: str, pattern: str, **kw) -> Fault:
        return self.inject(method, pattern, close=True, **kw)

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for item in self.faults:
                if item.matches(method, path):
                    if item.times is not None:
                        item.times -= 1
                        if item.times <= 0:
                            self.faults.remove(item)
                    return item
        return None

    # --- the HTTP side ------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet in test output
                pass

            def _serve(self) -> None:
                server._serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        return RequestHandler

    def _serve(self, http: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(http.path)
        length = int(http.headers.get("Content-Length") or 0)
        raw = http.rfile.read(length) if length else b""
        request = ProviderRequest(
            method=http.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers=http.headers,
            body=raw,
        )
        resolved = self.resolve(request.method, request.path)
        if resolved is not None:
            request.route, handler, match = resolved
            request.groups = match.groupdict()
        with self.lock:
            self.requests.append(request)

        fault = self._take_fault(request.method, request.path)
        if fault is not None and fault.delay:
            self._stopping.wait(fault.delay)
        if fault is not None and fault.close:
            http.close_connection = True  # no status line: the client sees a dropped connection
            return
        if fault is not None and (fault.status or fault.malformed or fault.oversized):
            headers = dict(fault.headers)
            if fault.malformed:
                status, headers["Content-Type"], body = (
                    fault.status or 200,
                    "application/json",
                    MALFORMED_BODY,
                )
            elif fault.oversized:
                headers["Content-Type"] = "application/json"
                filler = b"x" * max(0, fault.oversized - 12)
                status, body = fault.status or 200, b'{"data": "' + filler + b'"}'
            else:
                status, body = fault.status, encode_body(fault.body, headers)
        elif resolved is None:
            status, headers, payload = self.not_found(request)
            headers = dict(headers)
            body = encode_body(payload, headers)
        else:
            status, headers, payload = handler(request)
            headers = dict(headers)
            body = encode_body(payload, headers)
        self._write(http, status, headers, body)

    @staticmethod
    def _write(http: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes):
        http.send_response(status)
        for name, value in headers.items():
            http.send_header(name, value)
        http.send_header("Content-Length", str(len(body)))
        http.end_headers()
        if http.command != "HEAD":
            # A client that stops reading (an oversized body, a timeout) hangs up mid-write: expected.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                http.wfile.write(body)
