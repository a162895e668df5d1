"""A real Celery worker *process* for tests, consuming the test queue on the test broker.

Not eager, not a thread: ``celery -A crm worker --pool threads`` in a subprocess, with
``DJANGO_SETTINGS_MODULE=tests.settings`` and ``TEST_DATABASE_URL`` pointing at the database the
test process uses (pytest-django's ``test_parley``, or ``test_parley_gw0`` under xdist), so rows the
test commits are visible to the worker and rows the worker writes are visible to the test. The
subprocess does not create a test database, so the name it is given is the name it uses.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).with_name("celery"))


def database_url(settings_dict: dict) -> str:
    """The ``postgres://`` URL of a connection's settings (after pytest-django renamed it)."""
    user = quote(settings_dict.get("USER") or "")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password)}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or "5432"
    return f"postgres://{auth}{host}:{port}/{quote(settings_dict['NAME'])}"


def purge_queue(queue: str) -> int:
    from crm.celery import app

    with app.connection_for_write() as conn:
        return conn.default_channel.queue_purge(queue) or 0


class CeleryWorkerProcess:
    """``start()`` returns once the worker logged that it is ready; ``stop()`` ends it."""

    def __init__(self, *, queue: str | None = None, concurrency: int = 2) -> None:
        self.queue = queue or settings.CELERY_TASK_DEFAULT_QUEUE
        self.concurrency = concurrency
        self.nodename = f"test-{os.getpid()}-{secrets.token_hex(3)}@localhost"
        self.process: subprocess.Popen | None = None
        self.output: list[str] = []
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)  # keeps CHANNEL_PREFIX and CACHE_KEY_PREFIX of this test process
        env.update(
            DJANGO_SETTINGS_MODULE="tests.settings",
            TEST_DATABASE_URL=database_url(connection.settings_dict),
            TEST_CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
            TEST_CELERY_QUEUE=self.queue,
            CELERY_SKIP_CHECKS="1",  # the test process already ran them; saves a second
            # The test's own cache key space (tests/support/fixtures.py ``_fresh_cache``).
            CACHE_KEY_PREFIX=settings.CACHES["default"].get("KEY_PREFIX", ""),
            PYTHONUNBUFFERED="1",
        )
        return env

    def command(self) -> list[str]:
        return [
            CELERY,
            "-A",
            "crm",
            "worker",
            "--pool",
            "threads",
            "-Q",
            self.queue,
            "--concurrency",
            str(self.concurrency),
            "--hostname",
            self.nodename,
            "--loglevel",
            "INFO",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ]

    def start(self, timeout: float = 30.0) -> CeleryWorkerProcess:
        purge_queue(self.queue)
        self.process = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=self.environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, name="celery-worker-log", daemon=True)
        self._reader.start()
        if not self._ready.wait(timeout) or self.process.poll() is not None:
            self.stop()
            raise RuntimeError("the Celery worker did not start:\n" + self.log)
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if f"{self.nodename} ready." in line:
                self._ready.set()
        self._ready.set()  # the process ended: start() looks at poll()

    @property
    def log(self) -> str:
        return "".join(self.output)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        if self._reader is not None:
            self._reader.join(2)


@contextmanager
def celery_worker_process(**kwargs) -> Iterator[CeleryWorkerProcess]:
    worker = CeleryWorkerProcess(**kwargs).start()
    try:
        yield worker
    finally:
        worker.stop()


def wait_for(predicate, *, timeout: float, interval: float = 0.05):
    """Poll ``predicate`` until it returns something truthy or ``timeout`` passes (then ``None``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value or None
        time.sleep(interval)
