"""manage.py update_role EMAIL ROLE --organization SLUG"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from accounts import services
from crm.management.base import (
    OperatorCommand,
    membership_of,
    organization_by_slug,
    user_by_email,
    valid_role,
)


class Command(OperatorCommand):
    help = (
        "Change a member's role in an organization (viewer, agent, admin, owner). The last owner "
        "cannot be demoted; the change is written to the organization's audit log."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("role", help="viewer, agent, admin or owner")
        parser.add_argument("--organization", required=True, help="The organization's slug.")

    def handle(self, *args: Any, **options: Any) -> None:
        user = user_by_email(options["email"])
        organization = organization_by_slug(options["organization"])
        role = valid_role(options["role"])
        membership = membership_of(user, organization)
        previous = membership.role
        services.member_set_role_as_operator(
            organization=organization, membership=membership, role=role
        )
        if previous == role:
            self.stdout.write(f"{user.email} is already {role} in {organization.slug}.")
        else:
            self.success(f"{user.email} is now {role} in {organization.slug} (was {previous}).")
