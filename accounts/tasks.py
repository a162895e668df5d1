"""Background work of accounts: thin wrappers that call a service."""

from celery import shared_task

from accounts import services


@shared_task(ignore_result=True)
def expire_invitations() -> int:
    """Beat, hourly: invitations past their time marked expired. Safe to redeliver: an
    invitation already expired is not touched again."""
    return services.invitations_expire()
