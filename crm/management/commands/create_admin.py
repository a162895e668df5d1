"""manage.py create_admin EMAIL [--password-stdin | --password P] [--name N]
[--organization SLUG --role ROLE] [--update]"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import transaction

from accounts import services
from accounts.models import User
from crm.management.base import (
    OperatorCommand,
    add_password_arguments,
    is_interactive,
    no_password_error,
    organization_by_slug,
    read_password,
    valid_role,
)

PASSWORD_ENV = "PARLEY_ADMIN_PASSWORD"  # noqa: S105 - a variable name, not a password


class Command(OperatorCommand):
    help = (
        "Create a staff superuser who can sign in to the Django admin (/admin/), optionally a "
        f"member of an organization. The password comes from --password-stdin (a pipe), "
        f"${PASSWORD_ENV}, --password, or a prompt at a terminal."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        add_password_arguments(parser, env_var=PASSWORD_ENV)
        parser.add_argument("--name", default="", help="Display name of a new account.")
        parser.add_argument("--organization", help="Slug of an organization to join.")
        parser.add_argument("--role", help="Role there: viewer, agent, admin or owner.")
        parser.add_argument(
            "--update",
            action="store_true",
            help="If the account exists, make it a superuser (and set the password if one is given).",
        )
        self.add_no_input_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        email = options["email"].strip().lower()
        if bool(options["organization"]) != bool(options["role"]):
            raise CommandError("--organization and --role go together.")
        organization = role = None
        if options["organization"]:
            organization = organization_by_slug(options["organization"])
            role = valid_role(options["role"])
        existing = User.objects.filter(email__iexact=email).first()
        if existing is not None and not options["update"]:
            raise CommandError(
                f"{existing.email} already exists; pass --update to make it a superuser."
            )
        # Prompt only when a new account needs a password; --update keeps the old one unless told.
        password = read_password(
            given=options["password"],
            env_var=PASSWORD_ENV,
            from_stdin=options["password_stdin"],
            interactive=existing is None and is_interactive(options),
        )
        if existing is None and not password:
            raise no_password_error(PASSWORD_ENV)

        with transaction.atomic():
            if existing is None:
                user = services.user_create(email=email, password=password, name=options["name"])
            else:
                user = existing
                if password:
                    services.user_set_password(user=user, password=password)
            services.user_make_superuser(user=user)
            if organization is not None:
                services.member_add_as_operator(organization=organization, user=user, role=role)

        verb = "Created" if existing is None else "Updated"
        self.success(f"{verb} superuser {user.email}; they can sign in at /admin/.")
        if existing is not None and password:
            self.stdout.write("Password changed.")
        if organization is not None:
            self.stdout.write(f"Member of {organization.slug} as {role}.")
        if not user.is_active:
            self.stdout.write(
                self.style.WARNING(f"{user.email} is deactivated and cannot sign in.")
            )
