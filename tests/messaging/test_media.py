"""Media of incoming messages: fetched through the provider into S3, once; failures visible."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from messaging import ingest
from messaging.media import media_download
from messaging.models import MediaState, Message
from sessions_app.providers import events as ev
from tests.sessions_app.test_cloud_api_flow import cloud_session, graph  # noqa: F401 - fixture

JPEG = b"\xff\xd8\xff\xe0" + b"photo" * 100


def image_message(media_id: str, n: int = 1) -> ev.MessageUpserted:
    return ev.MessageUpserted(
        provider_message_id=f"wamid.IMG{n}",
        chat_jid="85291234567",
        from_me=False,
        timestamp=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        type=ev.MessageType.IMAGE,
        caption="the invoice",
        media=ev.Media(id=media_id, mime_type="image/jpeg"),
        sender=ev.Party(phone="85291234567", wa_id="85291234567", name="Ann"),
    )


def test_an_image_is_stored_in_s3_under_its_message_id_once(cast, graph, s3_storage):  # noqa: F811
    session = cloud_session(cast.org_a, cast.admin)
    media_id = graph.add_media(JPEG, "image/jpeg")
    with transaction.atomic():
        ingest.apply(session, [image_message(media_id)])
    message = Message.objects.get()
    assert message.media_state == MediaState.PENDING
    assert media_download(message_id=message.pk) == MediaState.STORED
    assert media_download(message_id=message.pk) == "skipped"  # a redelivered task
    message.refresh_from_db()
    key = f"{cast.org_a.pk}/{session.pk}/wamid.IMG1.jpg"
    assert message.media_key == key and message.media_size == len(JPEG)
    assert message.media_mime == "image/jpeg"
    stored = s3_storage.client().get_object(Bucket=s3_storage.bucket, Key=key)["Body"].read()
    assert stored == JPEG


def test_media_the_provider_no_longer_has_is_marked_failed_with_the_reason(
    cast,
    graph,  # noqa: F811
    s3_storage,
):
    session = cloud_session(cast.org_a, cast.admin)
    with transaction.atomic():
        ingest.apply(session, [image_message("999", n=2)])
    message = Message.objects.get()
    assert media_download(message_id=message.pk) == MediaState.FAILED
    message.refresh_from_db()
    assert message.media_state == MediaState.FAILED and message.media["error"]
    assert message.caption == "the invoice"  # the message itself is kept
