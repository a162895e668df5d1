from celery import shared_task

from accounts import services


@shared_task(ignore_result=True)
def expire_invitations() -> int:
    return services.invitations_expire()
