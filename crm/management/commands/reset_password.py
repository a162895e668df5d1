"""manage.py reset_password EMAIL [--password P]"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import transaction

from accounts import services
from crm.management.base import OperatorCommand, is_interactive, read_password, user_by_email

PASSWORD_ENV = "PARLEY_NEW_PASSWORD"  # noqa: S105 - a variable name, not a password


class Command(OperatorCommand):
    help = (
        f"Set a new password for an account (from --password, ${PASSWORD_ENV}, or a prompt). "
        "The password validators apply; the account's signed-in sessions end."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument(
            "--password", help=f"Visible in shell history and ps; prefer ${PASSWORD_ENV}."
        )
        self.add_no_input_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        user = user_by_email(options["email"])
        password = read_password(
            given=options["password"], env_var=PASSWORD_ENV, interactive=is_interactive(options)
        )
        if not password:
            raise CommandError(f"Give the new password with --password or ${PASSWORD_ENV}.")
        with transaction.atomic():
            services.user_set_password(user=user, password=password)
            services.audit_record(
                organization=None,
                action="user.password_reset",
                target=user,
                target_label=user.email,
                data={"via": "cli"},
            )
        self.success(f"Password of {user.email} changed.")
