"""A live ASGI server for tests: uvicorn in a thread, serving HTTP and websockets.

pytest-django's ``live_server`` is WSGI and cannot speak websockets; this one runs the real
``crm.asgi.application`` on a free loopback port.
"""

from __future__ import annotations

import threading
import time

import uvicorn


class LiveASGIServer:
    def __init__(self, app=None, host: str = "127.0.0.1") -> None:
        if app is None:
            from crm.asgi import application as app
        self.config = uvicorn.Config(
            app,
            host=host,
            port=0,
            lifespan="off",
            log_level="warning",
            ws="websockets-sansio",
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, name="live-asgi", daemon=True)
        self.host = host
        self.port: int | None = None

    def start(self) -> LiveASGIServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the live ASGI server did not start")
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"
