"""manage.py reset_password EMAIL [--password-stdin | --password P]"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser
from django.db import transaction

from accounts import services
from crm.management.base import (
    OperatorCommand,
    add_password_arguments,
    is_interactive,
    no_password_error,
    read_password,
    user_by_email,
)

PASSWORD_ENV = "PARLEY_NEW_PASSWORD"  # noqa: S105 - a variable name, not a password


class Command(OperatorCommand):
    help = (
        f"Set a new password for an account (from --password-stdin, ${PASSWORD_ENV}, --password, "
        "or a prompt at a terminal). "
        "The password validators apply; the account's signed-in sessions end."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        add_password_arguments(parser, env_var=PASSWORD_ENV)
        self.add_no_input_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        user = user_by_email(options["email"])
        password = read_password(
            given=options["password"],
            env_var=PASSWORD_ENV,
            interactive=is_interactive(options),
            from_stdin=options["password_stdin"],
        )
        if not password:
            raise no_password_error(PASSWORD_ENV, what="the new password")
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
