"""The outbound rate limiter, both implementations, against the real test Redis (REDIS_URL, db 14).

Time is passed as ``now``: nothing here sleeps or measures elapsed time.
"""

from __future__ import annotations

import threading
from uuid import uuid4

import pytest
import redis
from django.conf import settings
from django.test import override_settings

from messaging.ratelimit import (
    DEFAULT_PACE,
    KEY_PREFIX,
    LINKED_DEVICE_PACE,
    LocalRateLimiter,
    Pace,
    RedisRateLimiter,
    limiter,
    pace_for,
)

NOW = 1_700_000_000.0  # a realistic epoch, so float precision in Redis is exercised
TWENTY_A_MINUTE = Pace(rate=20, per=60, burst=3)  # refills one token every 3 s


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def new_key(redis_client):
    """``new_key()`` → a key no other test uses; its Redis bucket is deleted afterwards."""
    made: list[str] = []

    def make() -> str:
        made.append(f"test-{uuid4().hex}")
        return made[-1]

    yield make
    if made:
        redis_client.delete(*(KEY_PREFIX + key for key in made))


@pytest.fixture(params=["local", "redis"])
def rate_limiter(request, redis_client):
    if request.param == "local":
        return LocalRateLimiter()
    return RedisRateLimiter(redis_client)


# --- token bucket ---------------------------------------------------------------------------------


def test_it_allows_a_burst_then_names_the_exact_wait(rate_limiter, new_key):
    key = new_key()

    answers = [rate_limiter.acquire(key, TWENTY_A_MINUTE, now=NOW) for _ in range(4)]

    assert answers[:3] == [0.0, 0.0, 0.0]
    assert answers[3] == pytest.approx(3.0)


def test_a_refusal_takes_nothing(rate_limiter, new_key):
    key = new_key()
    for _ in range(3):
        rate_limiter.acquire(key, TWENTY_A_MINUTE, now=NOW)

    refusals = [rate_limiter.acquire(key, TWENTY_A_MINUTE, now=NOW) for _ in range(5)]

    assert refusals == pytest.approx([3.0] * 5)


def test_it_allows_one_more_after_waiting_the_named_time(rate_limiter, new_key):
    # Given an empty bucket and the wait it names
    key = new_key()
    for _ in range(3):
        rate_limiter.acquire(key, TWENTY_A_MINUTE, now=NOW)
    wait = rate_limiter.acquire(key, TWENTY_A_MINUTE, now=NOW)

    # When that long has passed, then exactly one more is allowed
    assert rate_limiter.acquire(key, TWENTY_A_MINUTE, now=NOW + wait) == 0.0
    assert rate_limiter.acquire(key, TWENTY_A_MINUTE, now=NOW + wait) == pytest.approx(3.0)


def test_a_partly_refilled_bucket_names_the_rest_of_the_wait(rate_limiter, new_key):
    key = new_key()
    for _ in range(3):
        rate_limiter.acquire(key, TWENTY_A_MINUTE, now=NOW)

    assert rate_limiter.acquire(key, TWENTY_A_MINUTE, now=NOW + 1.0) == pytest.approx(2.0)
    assert rate_limiter.acquire(key, TWENTY_A_MINUTE, now=NOW + 2.5) == pytest.approx(0.5)


def test_the_bucket_never_holds_more_than_the_burst(rate_limiter, new_key):
    # Given a bucket idle for an hour, far longer than it takes to refill
    key = new_key()
    rate_limiter.acquire(key, TWENTY_A_MINUTE, now=NOW)
    later = NOW + 3600

    answers = [rate_limiter.acquire(key, TWENTY_A_MINUTE, now=later) for _ in range(4)]

    assert answers[:3] == [0.0, 0.0, 0.0]
    assert answers[3] == pytest.approx(3.0)


def test_separate_keys_are_independent(rate_limiter, new_key):
    # Given one session that has used its burst
    busy, idle = new_key(), new_key()
    for _ in range(3):
        rate_limiter.acquire(busy, TWENTY_A_MINUTE, now=NOW)
    assert rate_limiter.acquire(busy, TWENTY_A_MINUTE, now=NOW) > 0

    # Then another session still has its whole burst
    answers = [rate_limiter.acquire(idle, TWENTY_A_MINUTE, now=NOW) for _ in range(4)]
    assert answers[:3] == [0.0, 0.0, 0.0]
    assert answers[3] == pytest.approx(3.0)


def test_jitter_is_added_to_refusals_within_its_bounds(rate_limiter, new_key):
    key = new_key()
    pace = Pace(rate=20, per=60, burst=1, jitter=2.0)
    assert rate_limiter.acquire(key, pace, now=NOW) == 0.0  # an allowed send is never delayed

    waits = [rate_limiter.acquire(key, pace, now=NOW) for _ in range(200)]

    assert all(3.0 <= wait <= 5.0 + 1e-9 for wait in waits)
    # uniform over [3, 5]: 200 draws all on one side of the middle would be a broken jitter
    assert min(waits) < 4.0 < max(waits)


def test_without_jitter_the_wait_is_exact(rate_limiter, new_key):
    key = new_key()
    pace = Pace(rate=20, per=60, burst=1, jitter=0.0)
    rate_limiter.acquire(key, pace, now=NOW)

    waits = {rate_limiter.acquire(key, pace, now=NOW) for _ in range(50)}

    assert len(waits) == 1
    assert waits.pop() == pytest.approx(3.0)


def test_concurrent_acquires_never_share_a_token(rate_limiter, new_key):
    # Given 8 workers hitting one session at the same instant, 50 times each
    key = new_key()
    pace = Pace(rate=1, per=3600, burst=10)
    start = threading.Barrier(8)
    allowed = [0] * 8

    def worker(index: int) -> None:
        start.wait()
        for _ in range(50):
            if rate_limiter.acquire(key, pace, now=NOW) == 0.0:
                allowed[index] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then exactly the burst got through
    assert sum(allowed) == 10


def test_it_uses_its_own_clock_when_no_time_is_given(rate_limiter, new_key):
    key = new_key()
    pace = Pace(rate=20, per=60, burst=1)

    assert rate_limiter.acquire(key, pace) == 0.0
    wait = rate_limiter.acquire(key, pace)

    assert 2.0 < wait <= 3.0  # the clock has moved a little since the first, not seconds


# --- Redis specifics ------------------------------------------------------------------------------


def test_an_idle_redis_bucket_expires_once_it_would_be_full(redis_client, new_key):
    key = new_key()
    RedisRateLimiter(redis_client).acquire(key, TWENTY_A_MINUTE, now=NOW)

    ttl_ms = redis_client.pttl(KEY_PREFIX + key)

    # a full bucket refills in 3 tokens x 3 s = 9 s, plus a second's margin
    assert 9_000 < ttl_ms <= 10_000


def test_the_redis_limiter_accepts_a_url(new_key):
    key = new_key()
    url_limiter = RedisRateLimiter(settings.REDIS_URL)

    assert url_limiter.acquire(key, Pace(rate=1, per=60, burst=1), now=NOW) == 0.0
    assert url_limiter.acquire(key, Pace(rate=1, per=60, burst=1), now=NOW) == pytest.approx(60.0)


# --- pace_for -------------------------------------------------------------------------------------


def test_linked_devices_are_paced_cautiously_and_cloud_api_at_metas_rate():
    for name in ("simulator", "evolution", "gowa"):
        pace = pace_for(name, None)
        assert pace.refill <= 1.0
        assert pace.jitter > 0
    cloud = pace_for("cloud_api", None)
    assert cloud == Pace(rate=80, per=1, burst=80, jitter=0.0)


def test_an_unknown_provider_gets_the_cautious_pace():
    assert pace_for("carrier-pigeon", {}) == LINKED_DEVICE_PACE


def test_a_sessions_settings_override_the_providers_default():
    pace = pace_for("evolution", {"rate": 10, "per": 30, "burst": 2, "jitter": 1})

    assert pace == Pace(rate=10, per=30, burst=2, jitter=1.0)


def test_settings_not_given_keep_the_default():
    pace = pace_for("cloud_api", {"rate": 40, "colour": "blue"})

    assert pace == Pace(rate=40, per=1, burst=80, jitter=0.0)


@pytest.mark.parametrize(
    "field,value",
    [
        ("rate", 0),
        ("rate", -5),
        ("rate", "10"),
        ("rate", None),
        ("rate", True),
        ("rate", float("nan")),
        ("rate", float("inf")),
        ("rate", 1e9),
        ("per", 0),
        ("per", -60),
        ("per", 10**9),
        ("per", [60]),
        ("burst", 0),
        ("burst", 2.5),
        ("burst", 10**7),
        ("burst", "3"),
        ("jitter", -1),
        ("jitter", 86_400),
        ("jitter", {"max": 2}),
    ],
)
def test_a_bad_setting_falls_back_to_the_default_for_that_key(field, value):
    default = DEFAULT_PACE["gowa"]
    good = {"rate": 6, "per": 30, "burst": 2, "jitter": 0.5}

    pace = pace_for("gowa", {**good, field: value})

    expected = {**good, field: getattr(default, field)}
    assert pace == Pace(**expected)


@pytest.mark.parametrize("settings_value", [None, "rate=5", ["rate", 5], 7])
def test_settings_that_are_not_a_mapping_give_the_default(settings_value):
    assert pace_for("cloud_api", settings_value) == DEFAULT_PACE["cloud_api"]


def test_an_integral_float_burst_is_accepted():
    assert pace_for("gowa", {"burst": 5.0}).burst == 5


def test_a_pace_built_by_hand_must_be_sane():
    with pytest.raises(ValueError):
        Pace(rate=0)
    with pytest.raises(ValueError):
        Pace(rate=1, burst=0)


# --- limiter() ------------------------------------------------------------------------------------


def test_the_process_limiter_is_redis_when_redis_is_configured():
    with override_settings(REDIS_URL="redis://127.0.0.1:6379/14"):
        chosen = limiter()
        again = limiter()

    assert isinstance(chosen, RedisRateLimiter)
    assert chosen.client.connection_pool.connection_kwargs["db"] == 14
    assert again is chosen


@pytest.mark.parametrize("url", [None, ""])
def test_the_process_limiter_is_local_without_redis(url):
    with override_settings(REDIS_URL=url):
        chosen = limiter()
        again = limiter()

    assert isinstance(chosen, LocalRateLimiter)
    assert again is chosen
