"""What the HTTP benchmarks share: a freshly migrated database, a free loopback port, uvicorn
started as production runs it, and stopping a process with its children."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fresh_database(server: str, name: str, env: dict[str, str]) -> None:
    """Database ``name`` on ``server`` dropped, created and migrated (``env`` names it)."""
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], env=env, cwd=ROOT, check=True
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_uvicorn(
    port: int, *, env: dict[str, str], workers: int, options: tuple[str, ...] = ()
) -> subprocess.Popen:
    """``crm.asgi`` on ``port`` with ``workers`` processes, in a process group of its own; returns
    once 20 health checks in a row were answered (every worker booted, not only the socket)."""
    process = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/uvicorn"),
            "crm.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
            *options,
        ],
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    answered = 0
    while time.monotonic() < deadline and answered < 20:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
                answered += answer.status == 200
        except OSError:
            answered = 0
            time.sleep(0.2)
    if answered < 20:
        stop(process)
        raise SystemExit("the server did not start")
    return process


def stop(process: subprocess.Popen | None) -> None:
    """SIGTERM to the process group (uvicorn's workers, a worker's threads), then SIGKILL."""
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
    except ProcessLookupError:
        pass
