"""manage.py create_organization NAME --owner EMAIL [--slug S] [--timezone TZ] [--country CC]"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from accounts import services
from crm.management.base import OperatorCommand, user_by_email


class Command(OperatorCommand):
    help = "Create an organization owned by an existing user; prints its slug."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="The organization's display name.")
        parser.add_argument(
            "--owner", required=True, help="Email of the existing user who owns it."
        )
        parser.add_argument(
            "--slug", help="Its address (/o/<slug>/); derived from the name if omitted."
        )
        parser.add_argument(
            "--timezone", default="UTC", help="IANA time zone, e.g. Asia/Hong_Kong."
        )
        parser.add_argument("--country", help="Default country for phone numbers, e.g. HK.")

    def handle(self, *args: Any, **options: Any) -> None:
        owner = user_by_email(options["owner"])
        organization = services.organization_create(
            name=options["name"],
            owner=owner,
            slug=options["slug"],
            timezone_name=options["timezone"],
            default_country=options["country"],
        )
        self.success(f"Created {organization.name}, owned by {owner.email}.")
        self.stdout.write(organization.slug)
