"""What the inbox's hot read serializers (``ChatSerializer``, ``MessageSerializer`` in
messaging/api_chats.py) are made of: rows read without model instances, and values written as
DRF writes them, without its per-field machinery.

Profiled on bench/inbox_queries.py's data, a list of 50 chats or messages spent most of its
Python building model instances (a Message runs its 35 fields through ``__init__`` for each
row, and one more instance for each row it names) and in DRF's fields (a bound field,
``get_attribute`` and ``to_representation`` per value). The lists read their rows with
``values()`` instead, as ``Row``s that read like the instances (``row.uuid``, ``row.pk``,
``row.contact_id``), with what they show of the rows they name in the same query
(``_shown``); the serializers write each row by hand. Both take model instances as well (the
live frames, a detail, the answer to a write). tests/messaging/test_api_rows.py checks every
row against DRF's generic ``Serializer.to_representation``, for both shapes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from enum import Enum

from django.conf import settings
from django.db.models import Model
from django.utils import timezone


class Row:
    """One row of a list's query (a ``values()`` dict), read like the model instance it
    stands for. Attributes may be set on it (``REACTIONS``), as on an instance."""

    __slots__ = ("__dict__",)

    def __init__(self, values: dict) -> None:
        self.__dict__ = values

    @property
    def pk(self):
        return self.__dict__["id"]


def rows(found: Iterable[dict]) -> list[Row]:
    return [Row(values) for values in found]


def values_of(model: type[Model], fields: Iterable[str]) -> tuple[str, ...]:
    """``fields`` of ``model`` as ``values()`` names them (a foreign key by its id:
    ``contact`` → ``contact_id``, as its instance's attribute), and ``id``."""
    names = [model._meta.get_field(name).attname for name in fields]
    return ("id", *(name for name in names if name != "id"))


_ABSENT = object()


def shown(obj, relation: str, field: str):
    """``obj.<relation>.<field>`` (None without a related row); or, from a list's query, the
    same value read into ``<relation>_<field>`` (no row object built for one value)."""
    value = obj.__dict__.get(f"{relation}_{field}", _ABSENT)
    if value is not _ABSENT:
        return value
    related = getattr(obj, relation)
    return None if related is None else getattr(related, field)


def text(value) -> str | None:
    """A ``CharField``'s or ``UUIDField``'s value as DRF writes it."""
    return None if value is None else str(value)


def choice(value):
    """A ``ChoiceField``'s value as DRF writes it: the choice's plain value."""
    if value in ("", None):
        return value
    return value.value if isinstance(value, Enum) else value


def current_zone() -> dt.tzinfo | None:
    """The zone DRF's ``DateTimeField`` writes times in (None: naive, without ``USE_TZ``)."""
    return timezone.get_current_timezone() if settings.USE_TZ else None


def when(value, zone: dt.tzinfo | None) -> str | None:
    """A ``DateTimeField``'s value as DRF writes it: ISO 8601 in ``zone`` (``current_zone``),
    UTC as ``Z``."""
    if not value:
        return None
    if isinstance(value, str):
        return value
    if zone is not None:
        value = (
            value.astimezone(zone) if timezone.is_aware(value) else timezone.make_aware(value, zone)
        )
    elif timezone.is_aware(value):
        value = timezone.make_naive(value, dt.UTC)
    written = value.isoformat()
    return written[:-6] + "Z" if written.endswith("+00:00") else written
