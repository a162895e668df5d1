"""manage.py rotate_credentials: re-encrypt every stored credential under the newest key.

Rotate Fernet keys by putting a new key first in FERNET_KEYS, deploying, running this, then
dropping the old key once this has run everywhere.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from crm import crypto
from crm.management.base import OperatorCommand
from sessions_app.models import WhatsAppSession


class Command(OperatorCommand):
    help = "Re-encrypt sessions' credentials and webhook secrets under the first FERNET_KEYS key."

    def handle(self, *args: Any, **options: Any) -> None:
        count = 0
        for session_id in WhatsAppSession.objects.values_list("pk", flat=True):
            with transaction.atomic():
                session = WhatsAppSession.objects.select_for_update().get(pk=session_id)
                for field in ("credentials_encrypted", "webhook_secret_encrypted"):
                    value = getattr(session, field)
                    if value:
                        setattr(session, field, crypto.rotate(value))
                session.save(update_fields=["credentials_encrypted", "webhook_secret_encrypted"])
                count += 1
        self.stdout.write(f"re-encrypted {count} session(s)")
