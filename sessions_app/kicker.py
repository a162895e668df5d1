"""Asking a worker to drain the inbound queue (``sessions_app.queue``): single-flight, a Redis
round trip at most once per interval per process, and a countdown drain for rows held back."""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger(__name__)

QUEUED = "parley:drain:queued"  # set while a drain task waits in the broker, not yet started


class _Kicker:
    """Ask a worker to drain, single-flight: a drain is queued only if none is queued yet (a
    ``SET NX`` on ``QUEUED``; the task clears it as it starts, so a row stored while a drain runs
    gets one more). However many webhooks arrive, the broker holds one waiting drain, not
    thousands, and a burst queued behind other work does not pile up.

    The ``SET NX`` costs a Redis round trip, so a process asks at most once per ``interval``
    (a round trip per webhook was a fifth of the receiver's time); a row stored within the
    interval is covered by one more ask when it ends (a timer thread), so it waits at most
    ``interval`` for a drain, never for the beat's sweep. A tenth of a second: with a whole
    second, a message took up to a second to reach an open inbox (``bench/inbox_latency.py``)."""

    interval = 0.1  # seconds
    flag_ttl = 60  # seconds: a queued drain lost with its broker message stops blocking kicks

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last = -1e9  # monotonic time of the last ask
        self.timer: threading.Timer | None = None

    def __call__(self) -> None:
        now = time.monotonic()
        with self.lock:
            if now - self.last >= self.interval:
                self.last = now
            else:
                if self.timer is None:
                    self.timer = threading.Timer(self.last + self.interval - now, self._later)
                    self.timer.daemon = True
                    self.timer.start()
                return
        self._ask()

    def _later(self) -> None:
        with self.lock:
            self.timer = None
            self.last = time.monotonic()
        self._ask()

    def at(self, seconds: float) -> None:
        """A drain ``seconds`` from now (for a row stored to become due then), one per quarter
        second however many ask; the sweep covers waits longer than a countdown may be
        (``settings.PARLEY_MAX_COUNTDOWN``)."""
        from django.conf import settings
        from django.core.cache import cache

        if seconds > settings.PARLEY_MAX_COUNTDOWN:
            return
        slot = int((time.time() + seconds) * 4)
        try:
            if not cache.add(f"{QUEUED}:at:{slot}", 1, timeout=int(seconds) + 5):
                return
        except Exception:
            logger.warning("drain flag unavailable; asking anyway", exc_info=True)
        self._send(seconds + 0.05)

    def _ask(self) -> None:
        from django.core.cache import cache

        try:
            if not cache.add(QUEUED, 1, timeout=self.flag_ttl):
                return  # a drain is queued and will see the row
        except Exception:  # the cache is down: ask anyway
            logger.warning("drain flag unavailable; asking anyway", exc_info=True)
        self._send(None)

    def _send(self, countdown: float | None) -> None:
        from sessions_app.tasks import drain_webhooks

        try:
            if countdown is None:
                drain_webhooks.delay()
            else:
                drain_webhooks.apply_async(countdown=countdown)
        except Exception:  # the broker is down: the beat sweep drains instead
            logger.warning("could not ask for a drain; the sweep will", exc_info=True)

    def started(self) -> None:
        """A drain task starts: rows stored from now on need another."""
        from django.core.cache import cache

        try:
            cache.delete(QUEUED)
        except Exception:
            logger.warning("drain flag unavailable", exc_info=True)


kick = _Kicker()
