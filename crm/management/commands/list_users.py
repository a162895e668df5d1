"""manage.py list_users [--organization SLUG] [--json]"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Prefetch

from accounts.models import Membership, User
from crm.management.base import OperatorCommand, format_table, organization_by_slug


class Command(OperatorCommand):
    help = "List accounts with their organizations and roles."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--organization", help="Only members of the organization with this slug."
        )
        parser.add_argument("--json", action="store_true", help="Machine-readable output.")

    def handle(self, *args: Any, **options: Any) -> None:
        users = User.objects.order_by("email").prefetch_related(
            Prefetch(
                "memberships",
                queryset=Membership.objects.select_related("organization").order_by(
                    "organization__slug"
                ),
            )
        )
        if options["organization"]:
            users = users.filter(
                memberships__organization=organization_by_slug(options["organization"])
            )
        rows = [
            {
                "email": user.email,
                "name": user.name,
                "active": user.is_active,
                "staff": user.is_staff,
                "superuser": user.is_superuser,
                "organizations": [
                    {
                        "slug": m.organization.slug,
                        "name": m.organization.name,
                        "role": m.role,
                        "active": m.is_active,
                    }
                    for m in user.memberships.all()
                ],
                "last_login": user.last_login,
                "date_joined": user.date_joined,
            }
            for user in users
        ]
        if options["json"]:
            self.stdout.write(json.dumps(rows, cls=DjangoJSONEncoder, indent=2))
            return
        for row in rows:
            row["roles"] = ", ".join(
                f"{m['slug']}:{m['role']}" + ("" if m["active"] else " (inactive)")
                for m in row["organizations"]
            )
        columns = [
            ("email", "Email"),
            ("name", "Name"),
            ("active", "Active"),
            ("staff", "Staff"),
            ("roles", "Organizations"),
            ("last_login", "Last login"),
        ]
        self.stdout.write(format_table(rows, columns))
        self.stdout.write(f"{len(rows)} user(s)")
