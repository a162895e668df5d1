"""The two ways to run (DESIGN §6), as a fresh process sees its environment: production refuses to
boot without a required variable and is clean under ``check --deploy``; embedded needs nothing."""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
MANAGE = [sys.executable, str(ROOT / "manage.py")]
PRODUCTION_REQUIRED = [
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "FERNET_KEYS",
    "ALLOWED_HOSTS",
    "S3_BUCKET",
]


def clean_env(data_dir: Path, **values: str) -> dict[str, str]:
    """Only what a fresh shell has, plus ``values``: none of the test run's DATABASE_URL & co."""
    keep = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    return {
        **keep,
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "PARLEY_DATA_DIR": str(data_dir),
        **values,
    }


def production_values() -> dict[str, str]:
    return {
        "PARLEY_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "DATABASE_URL": "postgres://u@127.0.0.1:5432/x",
        "REDIS_URL": "redis://127.0.0.1:6379/13",
        "FERNET_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "parley.example",
        "S3_BUCKET": "x",
        "S3_ENDPOINT_URL": "http://127.0.0.1:9",
        "BEHIND_TLS_PROXY": "true",
    }


def run_all(
    commands: dict[str, tuple[list[str], dict[str, str]]],
) -> dict[str, subprocess.CompletedProcess]:
    """Run the commands side by side (each is a fresh interpreter: ~1 s apiece)."""
    started = {
        name: subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name, (argv, env) in commands.items()
    }
    results = {}
    for name, process in started.items():
        stdout, stderr = process.communicate(timeout=60)
        results[name] = subprocess.CompletedProcess(
            process.args, process.returncode, stdout, stderr
        )
    return results


def test_it_refuses_to_boot_in_production_without_each_required_variable(tmp_path):
    commands = {}
    for missing in PRODUCTION_REQUIRED:
        values = production_values()
        del values[missing]
        commands[missing] = ([*MANAGE, "check"], clean_env(tmp_path, **values))

    results = run_all(commands)

    for missing, result in results.items():
        assert result.returncode != 0, f"booted without {missing}"
        last_line = result.stderr.strip().splitlines()[-1]
        assert "ImproperlyConfigured" in last_line
        assert missing in last_line, result.stderr
    assert not (tmp_path / "secrets.json").exists()  # production never writes dev secrets


def test_it_passes_the_deploy_checks_in_production_with_everything_set(tmp_path):
    env = clean_env(tmp_path, **production_values())

    result = subprocess.run(
        [*MANAGE, "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stderr + result.stdout


SHOW_SETTINGS = """
import json
from django.conf import settings
from crm.celery import app
db = settings.DATABASES["default"]
print(json.dumps({
    "mode": settings.PARLEY_ENV,
    "engine": db["ENGINE"],
    "name": db["NAME"],
    "options": db["OPTIONS"],
    "cache": settings.CACHES["default"]["BACKEND"],
    "layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
    "broker": app.conf.broker_url,
    "storage": settings.STORAGES["default"]["BACKEND"],
}))
"""


@pytest.mark.embedded
def test_it_runs_embedded_with_nothing_set(tmp_path):
    env = clean_env(tmp_path)

    results = run_all(
        {
            "check": ([*MANAGE, "check"], env),
            "show": ([*MANAGE, "shell", "-c", SHOW_SETTINGS], env),
        }
    )

    assert results["check"].returncode == 0, results["check"].stderr
    assert results["show"].returncode == 0, results["show"].stderr
    shown = json.loads(results["show"].stdout.strip().splitlines()[-1])
    assert shown["mode"] == "embedded"
    assert shown["engine"] == "django.db.backends.sqlite3"
    assert shown["name"] == str(tmp_path / "parley.sqlite3")
    assert shown["options"]["transaction_mode"] == "IMMEDIATE"
    assert "PRAGMA journal_mode=WAL" in shown["options"]["init_command"]
    assert shown["options"]["timeout"] > 0
    assert shown["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    assert shown["layer"] == "crm.channel_layer.ThreadSafeInMemoryChannelLayer"
    assert shown["broker"] == "memory://localhost/"
    assert shown["storage"] == "django.core.files.storage.FileSystemStorage"


def test_it_talks_to_postgresql_through_the_psycopg_pool_in_production(tmp_path):
    # Given the production settings pointed at the real PostgreSQL of the tests
    values = {**production_values(), "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/parley"}
    probe = (
        "from django.db import connection\n"
        "with connection.cursor() as c: c.execute('SELECT 41 + 1'); answer = c.fetchone()[0]\n"
        "print(type(connection.pool).__name__, connection.pool.max_size, answer)"
    )
    # When a fresh process runs a query
    result = subprocess.run(
        [*MANAGE, "shell", "-c", probe],
        env=clean_env(tmp_path, **values),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Then it went through psycopg's connection pool
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == ["ConnectionPool", "10", "42"]


def test_processes_starting_at_once_agree_on_one_set_of_dev_secrets(tmp_path):
    # Given eight processes that generate the embedded secrets in the same empty directory together
    script = (
        "import json, sys; from pathlib import Path; from crm.env import dev_secrets; "
        "print(json.dumps(dev_secrets(Path(sys.argv[1]))))"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    outputs = [process.communicate(timeout=60) for process in processes]

    # Then every one succeeds with the same keys, and only the secrets file is left behind, 0600
    assert all(process.returncode == 0 for process in processes), [err for _, err in outputs]
    assert len({out for out, _ in outputs}) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["secrets.json"]
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600
