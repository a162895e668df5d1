"""manage.py seed_demo [--force]: the demo organization and people of crm/demo.py."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser
from django.db import transaction
from django.test.utils import override_settings
from django.urls import reverse

from crm.demo import DEMO_OWNER_EMAIL, DEMO_STEPS, DemoContext, demo_password, demo_present
from crm.management.base import OperatorCommand


class Command(OperatorCommand):
    help = (
        "Create the demo organization (slug 'demo') with an owner, an admin, an agent, a viewer "
        "and a pending invitation, password from $PARLEY_DEMO_PASSWORD. Does nothing when the "
        "demo is present, unless --force, which re-runs the steps to fill in what is missing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run the steps even if the demo exists (nothing is duplicated).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        password = demo_password()
        if demo_present() and not options["force"]:
            self.stdout.write("demo data already present")
        else:
            ctx = DemoContext(password=password, say=lambda text: self.stdout.write(f"  {text}"))
            # The demo addresses (*.parley.local) cannot receive the invitation emails.
            no_email = override_settings(
                EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"
            )
            with no_email, transaction.atomic():
                for step in DEMO_STEPS:
                    step(ctx)
            self.success("Demo data ready.")
        login_url = settings.SITE_URL.rstrip("/") + reverse("login")
        self.stdout.write(f"Log in at {login_url} as {DEMO_OWNER_EMAIL} / {password}")
