"""Outbound pacing: one token bucket per WhatsApp session.

The send path asks ``limiter().acquire(key, pace)`` before calling the provider. The answer is 0.0
(a token was taken: send now) or the seconds to wait (nothing was taken: leave the message
``queued`` with ``next_attempt_at = now + wait`` and return). It never blocks and never sleeps, so
it is safe inside a Celery task.

Two implementations of one interface: ``RedisRateLimiter`` in production (one atomic Lua script
per acquire, shared by every worker) and ``LocalRateLimiter`` in embedded mode (one process, a
dict under a lock).
"""

from __future__ import annotations

import math
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from numbers import Real
from typing import Any

import redis
from django.conf import settings as django_settings

KEY_PREFIX = "parley:rl:"

# A refill that lands a hair under one token (float error: 3.0 * (20 / 60)) still counts as one.
EPSILON = 1e-9

# Beyond these a session's own setting is a typo, not a pace: it falls back to the default.
MAX_RATE = 10_000
MIN_PER = 1.0
MAX_PER = 86_400.0  # a day
MAX_BURST = 10_000
MAX_JITTER = 600.0  # ten minutes


def _is_valid(field: str, value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        return False
    if field == "rate":
        return 0 < value <= MAX_RATE
    if field == "per":
        return MIN_PER <= value <= MAX_PER
    if field == "burst":
        return float(value).is_integer() and 1 <= value <= MAX_BURST
    if field == "jitter":
        return 0 <= value <= MAX_JITTER
    return False


@dataclass(frozen=True)
class Pace:
    """A session's pacing: ``rate`` sends per ``per`` seconds sustained, bursts up to ``burst``,
    plus up to ``jitter`` seconds of random extra wait added to every 'not yet' answer (linked-device
    providers look less like a bot)."""

    rate: float
    per: float = 60.0
    burst: int = 1
    jitter: float = 0.0

    def __post_init__(self) -> None:
        for field in ("rate", "per", "burst", "jitter"):
            if not _is_valid(field, getattr(self, field)):
                raise ValueError(f"Pace.{field} out of range: {getattr(self, field)!r}")

    @property
    def refill(self) -> float:
        """Tokens added per second."""
        return self.rate / self.per


# Linked devices (Evolution, GOWA: WhatsApp Web sessions) have no published limit, but WhatsApp bans
# numbers that send like machines. One message every 3 s on average, a burst of 3 (an agent's quick
# reply in a few bubbles) and up to 2 s of jitter so the cadence is not metronomic. The simulator
# paces like them, so embedded mode behaves as production does.
LINKED_DEVICE_PACE = Pace(rate=20, per=60, burst=3, jitter=2.0)

DEFAULT_PACE: dict[str, Pace] = {
    "simulator": LINKED_DEVICE_PACE,
    "evolution": LINKED_DEVICE_PACE,
    "gowa": LINKED_DEVICE_PACE,
    # Meta's Cloud API: 80 messages per second per business phone number is the default throughput
    # (Meta raises it to 1,000 on request); Meta enforces it and answers 130429 beyond, so we pace
    # at it, allow the whole second's worth at once, and add no jitter (nothing to disguise).
    "cloud_api": Pace(rate=80, per=1, burst=80, jitter=0.0),
}


def pace_for(provider_name: str, settings: Mapping[str, Any] | None) -> Pace:
    """The session's pace: its own settings (a dict such as {"rate": 10, "per": 60, "burst": 2,
    "jitter": 1}) over the provider's default. Invalid or out-of-range values (non-numbers, <=0
    rate, burst < 1, negative jitter, absurd values) fall back to the default for that key — never
    raise. An unknown provider gets the linked-device pace, the cautious one."""
    default = DEFAULT_PACE.get(provider_name, LINKED_DEVICE_PACE)
    if not isinstance(settings, Mapping):
        return default
    chosen: dict[str, float] = {}
    for field in ("rate", "per", "burst", "jitter"):
        value = settings.get(field)
        chosen[field] = value if _is_valid(field, value) else getattr(default, field)
    return Pace(
        rate=float(chosen["rate"]),
        per=float(chosen["per"]),
        burst=int(chosen["burst"]),
        jitter=float(chosen["jitter"]),
    )


class RateLimiter(ABC):
    def acquire(self, key: str, pace: Pace, *, now: float | None = None) -> float:
        """Take one token for ``key``: 0.0 if allowed now, else the seconds to wait (jitter
        included). Never blocks, never sleeps. A 'not yet' takes nothing, so asking again later is
        free. ``now`` (seconds) replaces the limiter's clock, for tests."""
        wait = self._take(key, pace, now)
        if wait <= 0:
            return 0.0
        if pace.jitter > 0:
            wait += random.uniform(0, pace.jitter)
        return wait

    @abstractmethod
    def _take(self, key: str, pace: Pace, now: float | None) -> float:
        """The bucket step without jitter: 0.0 and one token taken, or the exact wait."""


def _step(tokens: float, stamp: float, now: float, pace: Pace) -> tuple[float, float, float]:
    """One token-bucket step: (tokens, stamp, wait) after refilling to ``now`` and trying to take
    one. The Lua script in ``RedisRateLimiter`` is this same function; change both or neither."""
    if now > stamp:
        tokens += (now - stamp) * pace.refill
        stamp = now
    tokens = min(tokens, pace.burst)
    if tokens >= 1 - EPSILON:
        return max(tokens - 1, 0.0), stamp, 0.0
    return tokens, stamp, (1 - tokens) / pace.refill


@dataclass
class _Bucket:
    tokens: float
    stamp: float
    full_at: float


class LocalRateLimiter(RateLimiter):
    """In-process buckets (embedded mode: one process holds every worker thread). The clock is
    ``time.monotonic``. Buckets that have refilled completely are dropped once there are many,
    which is the same as keeping them (a new bucket starts full)."""

    SWEEP_ABOVE = 10_000

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def _take(self, key: str, pace: Pace, now: float | None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                tokens, stamp = float(pace.burst), now
            else:
                tokens, stamp = bucket.tokens, bucket.stamp
            tokens, stamp, wait = _step(tokens, stamp, now, pace)
            full_at = stamp + (pace.burst - tokens) / pace.refill
            self._buckets[key] = _Bucket(tokens=tokens, stamp=stamp, full_at=full_at)
            if len(self._buckets) > self.SWEEP_ABOVE:
                self._buckets = {k: b for k, b in self._buckets.items() if b.full_at > now}
            return wait


# KEYS[1] the bucket; ARGV: capacity, refill (tokens per second), now ("" for Redis TIME), ttl (ms).
# State is a hash {tokens, ts}; numbers are stored and returned as "%.17g" strings because Redis
# truncates a Lua number reply to an integer and Lua's tostring keeps only 14 digits. The key
# expires once the bucket would be full again: a missing key is a full bucket, so nothing is lost.
_ACQUIRE_LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local key = KEYS[1]
local capacity = tonumber(ARGV[1])
local refill = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local ttl_ms = tonumber(ARGV[4])
local epsilon = tonumber(ARGV[5])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local state = redis.call('HMGET', key, 'tokens', 'ts')
local tokens = tonumber(state[1])
local stamp = tonumber(state[2])
if tokens == nil or stamp == nil then
  tokens = capacity
  stamp = now
end
if now > stamp then
  tokens = tokens + (now - stamp) * refill
  stamp = now
end
tokens = math.min(tokens, capacity)
local wait = 0
if tokens >= 1 - epsilon then
  tokens = math.max(tokens - 1, 0)
else
  wait = (1 - tokens) / refill
end
redis.call('HSET', key, 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.17g', stamp))
redis.call('PEXPIRE', key, ttl_ms)
return string.format('%.17g', wait)
"""


class RedisRateLimiter(RateLimiter):
    """Buckets in Redis under ``parley:rl:<key>``, shared by every worker process. Each acquire is
    one script run, so concurrent workers never both take the last token. The clock is the Redis
    server's ``TIME`` (one clock for all workers) unless ``now`` is passed. Raises
    ``redis.RedisError`` when Redis is unreachable: a transient error for the caller to retry."""

    def __init__(self, client: redis.Redis | str) -> None:
        if isinstance(client, str):
            client = redis.Redis.from_url(client, socket_timeout=5, socket_connect_timeout=5)
        self.client = client
        self._script = client.register_script(_ACQUIRE_LUA)

    def _take(self, key: str, pace: Pace, now: float | None) -> float:
        ttl_ms = math.ceil(pace.burst / pace.refill * 1000) + 1000
        reply = self._script(
            keys=[KEY_PREFIX + key],
            args=[
                repr(float(pace.burst)),
                repr(pace.refill),
                "" if now is None else repr(float(now)),
                ttl_ms,
                repr(EPSILON),
            ],
        )
        return float(reply)


def limiter() -> RateLimiter:
    """The process's limiter: Redis when settings.REDIS_URL is set, else the local one. Built once
    per URL and cached, so every caller in the process shares the same buckets."""
    return _limiter_for(getattr(django_settings, "REDIS_URL", None) or None)


@lru_cache(maxsize=4)
def _limiter_for(redis_url: str | None) -> RateLimiter:
    if redis_url:
        return RedisRateLimiter(redis_url)
    return LocalRateLimiter()
