"""Test settings: the real services on loopback (README "Tests"), then the project's settings.

Defaults: PostgreSQL database ``parley`` (pytest-django creates ``test_parley``) as role ``postgres``
on 127.0.0.1:5432, Redis database 14 for cache/channels and 15 for the test Celery broker.
Set TEST_DATABASE_URL / TEST_REDIS_URL to point elsewhere.
"""

import os

os.environ["DATABASE_URL"] = os.environ.get(
    "TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/parley"
)
os.environ["REDIS_URL"] = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
os.environ.setdefault(
    "PARLEY_DATA_DIR", os.path.join(os.path.dirname(__file__), "..", "var", "test")
)
os.environ.setdefault("CHANNEL_PREFIX", f"parley-test-{os.getpid()}")
os.environ.setdefault("CACHE_KEY_PREFIX", f"parley-test-{os.getpid()}")

from crm.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed; real hashers in prod
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_BROKER_URL = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
# The test process's own queue; a test's worker process is given it, so what the worker queues
# itself (a drain after a send, a retry) reaches it too.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("TEST_CELERY_QUEUE") or f"parley-test-{os.getpid()}"
DATABASES["default"]["OPTIONS"].pop("pool", None)  # noqa: F405 - live servers open many threads
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("TEST_DATABASE_NAME", "test_parley")}  # noqa: F405
