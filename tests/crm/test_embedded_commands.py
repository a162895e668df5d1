"""Operators' commands as a script or a container runs them: a fresh process in the embedded mode
(nothing configured, an empty data directory), its standard input not a terminal."""

from __future__ import annotations

import subprocess

import pytest

from tests.crm.test_settings_modes import MANAGE, ROOT, clean_env

STRONG = "a brand new harbour lantern"
KOMBU_WARNING = "No hostname was supplied"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """An embedded install, migrated and seeded with the demo organization once for the module."""
    path = tmp_path_factory.mktemp("embedded")
    for argv in (["migrate", "-v", "0"], ["seed_demo"]):
        done = manage(path, *argv)
        assert done.returncode == 0, done.stderr
    return path


def manage(data_dir, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """``manage.py argv`` with standard input a pipe (``stdin``, or empty): never a terminal."""
    return subprocess.run(
        [*MANAGE, *argv],
        env=clean_env(data_dir),
        cwd=ROOT,
        input=stdin or "",
        capture_output=True,
        text=True,
        timeout=120,
    )


def signs_in(data_dir, email: str, password: str) -> bool:
    probe = (
        "from django.contrib.auth import authenticate\n"
        f"user = authenticate(username={email!r}, password={password!r})\n"
        "print(bool(user and user.is_superuser and user.is_staff))"
    )
    done = manage(data_dir, "shell", "-c", probe)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.embedded
def test_create_admin_without_a_terminal_says_how_to_pass_the_password(data_dir):
    # When create_admin runs as the README shows it, from a script (stdin is not a terminal)
    done = manage(data_dir, "create_admin", "script@ops.example")

    # Then it fails without a traceback, naming each way to give the password
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "no terminal" in done.stderr
    assert "$PARLEY_ADMIN_PASSWORD" in done.stderr
    assert "--password-stdin" in done.stderr
    assert not signs_in(data_dir, "script@ops.example", STRONG)


@pytest.mark.embedded
def test_create_admin_reads_the_password_from_a_pipe(data_dir):
    done = manage(
        data_dir, "create_admin", "piped@ops.example", "--password-stdin", stdin=STRONG + "\n"
    )

    assert done.returncode == 0, done.stderr
    assert "Created superuser piped@ops.example" in done.stdout
    assert signs_in(data_dir, "piped@ops.example", STRONG)


@pytest.mark.embedded
def test_create_admin_says_where_the_password_comes_from_in_its_help(data_dir):
    done = manage(data_dir, "create_admin", "--help")

    text = " ".join(done.stdout.split())
    assert "--password-stdin" in text and "$PARLEY_ADMIN_PASSWORD" in text
    assert "printf '%s\\n' \"$PW\" | manage.py ... --password-stdin" in text


@pytest.mark.embedded
def test_reset_password_reads_the_new_password_from_a_pipe(data_dir):
    created = manage(
        data_dir,
        "create_admin",
        "reset@ops.example",
        "--password-stdin",
        stdin="first one here ok\n",
    )
    assert created.returncode == 0, created.stderr

    done = manage(data_dir, "reset_password", "reset@ops.example", "--password-stdin", stdin=STRONG)

    assert done.returncode == 0, done.stderr
    assert signs_in(data_dir, "reset@ops.example", STRONG)


@pytest.mark.embedded
def test_simulate_inbound_prints_no_broker_warning(data_dir):
    # When a simulated customer writes to the demo's simulator session (its task goes to the
    # in-memory broker: the first task this process sends)
    done = manage(data_dir, "simulate_inbound", "demo", "Demo phone", "85291234567", "Hello")

    # Then it says what it queued, and kombu does not complain about a missing hostname
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("queued ")
    assert KOMBU_WARNING not in done.stderr
    assert done.stderr == ""
