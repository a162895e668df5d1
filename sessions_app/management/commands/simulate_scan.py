"""manage.py simulate_scan <organization> <session name>: the simulated phone scans the QR code.

Writes to the inbound queue; the running server's drainer applies it (the dashboard flips live).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from crm.management.base import OperatorCommand
from sessions_app import simulation
from sessions_app.management.commands._session import find_session


class Command(OperatorCommand):
    help = "The simulator's phone scans the QR code of a session waiting for one."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("organization", help="the organization's slug")
        parser.add_argument("session", help="the session's name or id")

    def handle(self, *args: Any, **options: Any) -> None:
        session = find_session(options["organization"], options["session"])
        simulation.simulate_scan(session=session)
        self.stdout.write(f"scanned: {session.name} will connect in a moment")
