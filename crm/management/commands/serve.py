"""``manage.py serve``: the web server and, in the same process, a Celery worker and beat.

The embedded mode (DESIGN §6) has no Redis: the broker is ``memory://``, whose queues live inside
one process. So the worker and beat run here, as threads next to uvicorn, and a task queued by a
request is consumed by the same process. uvicorn keeps the main thread, where it installs its
signal handlers; Ctrl-C (or SIGTERM) stops uvicorn first, then the worker and beat.

With ``REDIS_URL`` set this still works (the worker consumes from Redis), but production runs
``celery -A crm worker`` and ``celery -A crm beat`` as separate processes, and ``--no-worker`` here.

The worker is started from this command only, never from ``AppConfig.ready()``, which also runs
under ``migrate``, the shell and pytest.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


class EmbeddedWorker:
    """A Celery worker (thread pool) and beat, each in a daemon thread of this process.

    ``celery.worker.WorkController`` is the worker without the program around it: unlike
    ``celery.apps.worker.Worker`` it installs no signal handlers (which only the main thread may
    do) and does not redirect stdout.
    """

    def __init__(self, *, concurrency: int, with_beat: bool = True) -> None:
        from celery.beat import EmbeddedService
        from celery.worker import WorkController

        from crm.celery import app

        self.app = app
        self.worker = WorkController(
            app=app,
            hostname=f"embedded@{socket.gethostname()}",
            pool_cls="threads",
            concurrency=concurrency,
            queues=[app.conf.task_default_queue],
            without_mingle=True,
            without_gossip=True,
            without_heartbeat=True,
        )
        self.worker_thread = threading.Thread(
            target=self._run_worker, name="celery-worker", daemon=True
        )
        self.beat = (
            EmbeddedService(
                app,
                thread=True,
                schedule_filename=str(settings.DATA_DIR / "celerybeat-schedule"),
            )
            if with_beat
            else None
        )

    def _run_worker(self) -> None:
        self.app.set_current()
        self.worker.start()

    def start(self) -> None:
        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
        self.worker_thread.start()
        if self.beat is not None:
            self.beat.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self.beat is not None and self.beat.is_alive():
            self.beat.service.stop()
            self.beat.join(timeout)
        if self.worker_thread.is_alive():
            self.worker.stop(in_sighandler=False)
            self.worker_thread.join(timeout)


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    # uvicorn captures SIGTERM while it serves and re-raises it after its graceful shutdown; this
    # handler then turns it into SystemExit so the worker and beat are stopped in ``finally``.
    raise SystemExit(0)


class Command(BaseCommand):
    help = "Serve Parley over ASGI (uvicorn) with an in-process Celery worker and beat."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--no-worker",
            action="store_true",
            help="Serve HTTP only: run `celery -A crm worker` and `celery -A crm beat` apart.",
        )
        parser.add_argument("--concurrency", type=int, default=2, help="Worker threads.")

    def handle(
        self, *args: Any, host: str, port: int, no_worker: bool, concurrency: int, **options: Any
    ) -> None:
        import uvicorn

        from crm.celery import app

        background = None if no_worker else EmbeddedWorker(concurrency=concurrency)
        host_in_url = f"[{host}]" if ":" in host else host
        self.stdout.write(f"Parley ({settings.PARLEY_ENV} mode) on http://{host_in_url}:{port}/")
        self.stdout.write(
            f"  database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}"
        )
        self.stdout.write(f"  broker:   {app.conf.broker_url.split('@')[-1]}")
        if background is None:
            self.stdout.write("  worker:   none (--no-worker)")
        else:
            self.stdout.write(f"  worker:   in-process, {concurrency} threads, with beat")
            if settings.REDIS_URL:
                self.stdout.write(
                    "  (production runs `celery -A crm worker` and `celery -A crm beat` apart)"
                )
        self.stdout.flush()

        server = uvicorn.Server(
            uvicorn.Config(
                "crm.asgi:application",
                host=host,
                port=port,
                lifespan="off",
                ws="websockets-sansio",
                log_level="info",
                timeout_graceful_shutdown=5,
            )
        )
        previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
        try:
            if background is not None:
                background.start()
            server.run()
        except KeyboardInterrupt:
            pass
        finally:
            if background is not None:
                self.stdout.write("Stopping the worker and beat…")
                background.stop()
            signal.signal(signal.SIGTERM, previous)
        self.stdout.write("Stopped.")
        sys.stdout.flush()
