"""manage.py delete_user EMAIL [--yes]"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts import services
from crm.management.base import OperatorCommand, is_interactive, user_by_email


class Command(OperatorCommand):
    help = (
        "Delete an account: its memberships end (recorded in each organization's audit log) and "
        "the API keys it created are revoked. Refused while it is the last owner of an organization."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")
        self.add_no_input_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        user = user_by_email(options["email"])
        if not options["yes"]:
            if not is_interactive(options):
                raise CommandError("Not deleting without confirmation; pass --yes.")
            answer = input(f"Delete {user.email} for good? Type 'yes' to confirm: ")
            if answer.strip().lower() != "yes":
                raise CommandError("Cancelled; nothing was deleted.")
        email = user.email
        services.user_delete(user=user)
        self.success(f"Deleted {email}.")
