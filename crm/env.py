"""Reading settings from the environment, failing loudly on bad values.

Two modes (DESIGN §6). With nothing set, Parley runs *embedded*: SQLite, local media, the in-memory
broker and channel layer, and a dev secret generated once into ``var/secrets.json``. With
``PARLEY_ENV=production`` every required variable must be present, and a missing one stops the boot
with its name. Outside production each service variable is optional: ``DATABASE_URL`` alone moves
the database to PostgreSQL, ``REDIS_URL`` alone moves broker, cache and channel layer to Redis.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

PRODUCTION_REQUIRED = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "FERNET_KEYS", "ALLOWED_HOSTS")


def env_str(name: str, default: str | None = None, *, required: bool = False) -> str | None:
    value = os.environ.get(name, "").strip()
    if value:
        return value
    if required:
        raise ImproperlyConfigured(f"The environment variable {name} is required but not set.")
    return default


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}.")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}.") from None


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def check_production(required: tuple[str, ...] = PRODUCTION_REQUIRED) -> None:
    missing = [name for name in required if not os.environ.get(name, "").strip()]
    if missing:
        raise ImproperlyConfigured(
            "PARLEY_ENV=production needs these environment variables: " + ", ".join(missing)
        )


def database_from_url(url: str, *, pool: bool) -> dict:
    """``postgres://user:pass@host:port/name?sslmode=require`` → a DATABASES entry."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ImproperlyConfigured(
            f"DATABASE_URL must be a postgres:// URL (got scheme {parts.scheme!r}); "
            "leave it unset for the embedded SQLite database."
        )
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise ImproperlyConfigured("DATABASE_URL names no database (postgres://user@host/NAME).")
    options: dict = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if pool:
        options["pool"] = {
            "min_size": 1,
            "max_size": env_int("DATABASE_POOL_MAX", 10),
            "timeout": 10,
        }
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "OPTIONS": options,
        "CONN_MAX_AGE": 0,
        "TEST": {"NAME": env_str("DATABASE_TEST_NAME")},
    }


def sqlite_database(path: Path) -> dict:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


def dev_secrets(data_dir: Path) -> dict[str, str]:
    """The embedded mode's SECRET_KEY and Fernet key: generated once, kept in a git-ignored file."""
    from cryptography.fernet import Fernet

    path = data_dir / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    data_dir.mkdir(parents=True, exist_ok=True)
    values = {"SECRET_KEY": secrets.token_urlsafe(50), "FERNET_KEY": Fernet.generate_key().decode()}
    # A file of this process's own (mkstemp creates it 0600), then linked into place: os.link is an
    # atomic "create if absent", so two processes starting at once agree on one set of secrets.
    fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=".secrets-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(values))
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    return json.loads(path.read_text())
