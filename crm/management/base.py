"""What the operators' commands share.

``OperatorCommand`` turns the application error into ``CommandError`` (exit code 1, one line on
stderr, no traceback); the look-ups fail the same way with a message naming what was not found.
Commands only read here; every write goes through a service.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import ROLE_RANK, Membership, Organization, User
from crm.errors import ApplicationError

ROLES_TEXT = "viewer, agent, admin or owner"


def describe_error(exc: ApplicationError) -> str:
    """The error's message, followed by any field messages it does not already say."""
    parts = [exc.message]
    for field, messages in exc.fields.items():
        text = " ".join(str(m) for m in messages)
        if text and text not in exc.message:
            parts.append(f"{field}: {text}")
    return " ".join(parts)


class OperatorCommand(BaseCommand):
    def execute(self, *args: Any, **options: Any) -> str | None:
        try:
            return super().execute(*args, **options)
        except ApplicationError as exc:
            raise CommandError(describe_error(exc)) from None

    def add_no_input_argument(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-input",
            "--noinput",
            action="store_false",
            dest="interactive",
            help="Never prompt; fail instead of asking.",
        )

    def success(self, text: str) -> None:
        self.stdout.write(self.style.SUCCESS(text))


def is_interactive(options: dict[str, Any]) -> bool:
    return bool(options.get("interactive", True)) and sys.stdin.isatty()


def user_by_email(email: str) -> User:
    user = User.objects.filter(email__iexact=(email or "").strip()).first()
    if user is None:
        raise CommandError(f"No user with email {email!r}.")
    return user


def organization_by_slug(slug: str) -> Organization:
    organization = Organization.objects.filter(slug=(slug or "").strip()).first()
    if organization is None:
        raise CommandError(f"No organization with slug {slug!r}.")
    return organization


def membership_of(user: User, organization: Organization) -> Membership:
    membership = Membership.objects.filter(organization=organization, user=user).first()
    if membership is None:
        raise CommandError(f"{user.email} is not a member of {organization.slug}.")
    return membership


def valid_role(role: str) -> str:
    role = (role or "").strip().lower()
    if role not in ROLE_RANK:
        raise CommandError(f"Unknown role {role!r}; choose {ROLES_TEXT}.")
    return role


def add_password_arguments(parser: CommandParser, *, env_var: str) -> None:
    """``--password`` and ``--password-stdin``: the two ways to give a password on the command line."""
    given = parser.add_mutually_exclusive_group()
    given.add_argument(
        "--password",
        help=f"Visible in shell history and ps; prefer ${env_var} or --password-stdin.",
    )
    given.add_argument(
        "--password-stdin",
        action="store_true",
        help="Read the password from standard input (one line), for scripts and pipes: "
        "printf '%%s\\n' \"$PW\" | manage.py ... --password-stdin",
    )


def read_password(
    *, given: str | None, env_var: str, interactive: bool, from_stdin: bool = False
) -> str | None:
    """The password from the option, else from standard input (``from_stdin``), else from
    ``env_var``, else typed twice at a prompt.

    None when none of these is available (not interactive and nothing given).
    """
    if given:
        return given
    if from_stdin:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
        if not password:
            raise CommandError("--password-stdin read an empty password from standard input.")
        return password
    from_env = os.environ.get(env_var)
    if from_env:
        return from_env
    if not interactive:
        return None
    first = getpass.getpass("Password: ")
    if not first:
        raise CommandError("An empty password is not allowed.")
    if getpass.getpass("Password (again): ") != first:
        raise CommandError("The passwords do not match.")
    return first


def no_password_error(env_var: str, *, what: str = "a password") -> CommandError:
    """Said when no password came and none may be asked for (a script, a container, --no-input)."""
    why = "--no-input forbids a prompt" if sys.stdin.isatty() else "there is no terminal to ask at"
    return CommandError(
        f"Give {what}: {why}. Set ${env_var}, pipe it in with --password-stdin "
        f"(printf '%s\\n' \"$PW\" | manage.py ... --password-stdin), or pass --password "
        "(visible in ps)."
    )


def format_table(rows: Iterable[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """A plain-text table of ``rows`` showing ``columns`` as (key, heading) pairs."""
    cells = [[heading for _key, heading in columns]]
    for row in rows:
        cells.append([_cell(row.get(key)) for key, _heading in columns])
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = [
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True))
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)
