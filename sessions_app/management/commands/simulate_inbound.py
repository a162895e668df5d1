"""manage.py simulate_inbound <organization> <session> <from phone> <text> [--name N]."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from crm.management.base import OperatorCommand
from sessions_app import simulation
from sessions_app.management.commands._session import find_session


class Command(OperatorCommand):
    help = "A message from a phone number arrives on a simulator session."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("organization", help="the organization's slug")
        parser.add_argument("session", help="the session's name or id")
        parser.add_argument("phone", help="the sender, E.164 digits (e.g. 85291234567)")
        parser.add_argument("text", help="the message")
        parser.add_argument("--name", default="", help="the sender's WhatsApp name")

    def handle(self, *args: Any, **options: Any) -> None:
        session = find_session(options["organization"], options["session"])
        message_id = simulation.simulate_inbound(
            session=session, phone=options["phone"], text=options["text"], name=options["name"]
        )
        self.stdout.write(f"queued {message_id}")
