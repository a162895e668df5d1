"""Bulk writes on PostgreSQL by ``COPY``: rows as the ORM would store them, at a fraction of its
cost (``bulk_create`` spends ~100 µs a row in Python preparing and compiling; this ~5).

Rows are dicts keyed by field ``attname``. ``complete`` fills in what a row leaves out as a
model instance would (the field's default; ``auto_now``/``auto_now_add`` fields the given time).
``copy`` writes rows as COPY text, each value as ``get_db_prep_save`` would prepare it: a
column whose values are all of a type the field passes unchanged (text, int, bool, UUID, an
aware datetime, a dict or list as the JSON text Django sends) is written by one comprehension;
any other value goes through its field. It streams them into a table in slices, so the
server stores one while the next is prepared here; ``take_ids`` reserves primary keys from the
table's sequence first, when the caller needs to know them (COPY returns nothing).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal
from functools import partial
from itertools import islice
from types import NoneType

from django.db import connection
from django.db.models import Field, Model
from psycopg.types.json import Jsonb

SLICE = 500  # rows written to the server at a time
NULL = "\\N"
# COPY's text format: columns split by a tab, rows by a newline, NULL as \N, and in a value a
# backslash, tab, newline or carriage return escaped.
_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_SPECIAL = re.compile(r"[\\\t\n\r]")
_KINDS = {
    "CharField": "text",
    "TextField": "text",
    "BigAutoField": "int",
    "AutoField": "int",
    "BigIntegerField": "int",
    "IntegerField": "int",
    "SmallIntegerField": "int",
    "PositiveBigIntegerField": "int",
    "PositiveIntegerField": "int",
    "PositiveSmallIntegerField": "int",
    "BooleanField": "bool",
    "UUIDField": "uuid",
    "DateTimeField": "datetime",
    "JSONField": "json",
}


def fields_of(model: type[Model], *, pk: bool = False) -> list[Field]:
    """The model's columns, the primary key only if asked."""
    return [f for f in model._meta.concrete_fields if pk or not f.primary_key]


def complete(rows: Iterable[dict], fields: Sequence[Field], now: dt.datetime) -> list[dict]:
    """Each row with every field of ``fields``: what it leaves out takes the field's default
    (called per row: a UUID each), an ``auto_now``/``auto_now_add`` field ``now``."""
    auto = [f.attname for f in fields if getattr(f, "auto_now", False)]
    auto += [f.attname for f in fields if getattr(f, "auto_now_add", False)]
    rest = [f for f in fields if f.attname not in auto]
    out = []
    for row in rows:
        full = {name: now for name in auto}
        for f in rest:
            full[f.attname] = row[f.attname] if f.attname in row else f.get_default()
        full.update((name, row[name]) for name in auto if name in row)
        out.append(full)
    return out


def insert(
    model: type[Model], rows: list[dict], now: dt.datetime, *, ids: bool = True
) -> list[int]:
    """COPY ``rows`` (``complete``d here) into the model's table; with ``ids``, primary keys are
    taken for them first and returned in order. A conflict raises ``IntegrityError`` (run it in a
    savepoint where one may happen)."""
    if not rows:
        return []
    fields = fields_of(model, pk=ids)
    keys = take_ids(model, len(rows)) if ids else []
    if ids:
        rows = [{**row, model._meta.pk.attname: pk} for row, pk in zip(rows, keys, strict=True)]
    copy(model._meta.db_table, fields, complete(rows, fields, now))
    return keys


def take_ids(model: type[Model], count: int) -> list[int]:
    """``count`` new primary keys from the table's sequence, in order."""
    if not count:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [_sequence(model), count]
        )
        return [pk for (pk,) in cursor.fetchall()]


def _sequence(model: type[Model]) -> str:
    """The name of the sequence behind the model's primary key, asked once (a per-row
    ``pg_get_serial_sequence`` costs 8x the ``nextval``)."""
    table = model._meta.db_table
    if table not in _SEQUENCES:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, model._meta.pk.column])
            _SEQUENCES[table] = cursor.fetchone()[0]
    return _SEQUENCES[table]


_SEQUENCES: dict[str, str] = {}


def copy(table: str, fields: Sequence[Field], rows: Iterable[dict]) -> None:
    """COPY ``rows`` (each holding every field of ``fields``) into ``table``. ``rows`` may be
    made as they are asked for: each slice is made while the server stores the one before."""
    ops = connection.ops
    names = ", ".join(ops.quote_name(f.column) for f in fields)
    plan = _plan(fields)
    rows = iter(rows)
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy(f"COPY {ops.quote_name(table)} ({names}) FROM STDIN") as stream,
    ):
        while chunk := list(islice(rows, SLICE)):
            stream.write("".join(_lines(chunk, plan)))


def _plan(fields: Sequence[Field]) -> list[tuple]:
    """Per field: (attname, kind by its column type (a foreign key's is its target's), the JSON
    dumps Django's PostgreSQL backend gives psycopg's ``Jsonb`` (``adapt_json_value``), field)."""
    plan = []
    for f in fields:
        kind = _KINDS.get((f.target_field if f.is_relation else f).get_internal_type(), "")
        encoder = getattr(f, "encoder", None)
        dumps = partial(json.dumps, cls=encoder) if kind == "json" and encoder else json.dumps
        plan.append((f.attname, kind, dumps, f))
    return plan


def _lines(rows: list[dict], plan: list[tuple]) -> list[str]:
    columns = [
        _column([row[name] for row in rows], kind, dumps, f) for name, kind, dumps, f in plan
    ]
    return ["\t".join(line) + "\n" for line in zip(*columns, strict=True)]


def _column(values: list, kind: str, dumps, f: Field) -> list[str]:
    types = set(map(type, values))
    nullable = types - {NoneType}
    if kind == "text" and all(issubclass(t, str) for t in nullable):  # choices: str subclasses
        special = _SPECIAL.search
        if special("".join(v for v in values if v)):  # one search for the column, usually
            return [
                NULL if v is None else v.translate(_ESCAPE) if special(v) else v for v in values
            ]
        return [NULL if v is None else v for v in values] if NoneType in types else values
    if kind == "int" and nullable <= {int}:
        return [NULL if v is None else str(v) for v in values]
    if kind == "bool" and types == {bool}:
        return ["t" if v else "f" for v in values]
    if (
        kind == "datetime"
        and nullable <= {dt.datetime}
        and all(v is None or v.utcoffset() is not None for v in values)
    ):
        seen: dict[dt.datetime, str] = {}  # rows written together often share a time
        return [
            NULL if v is None else seen.get(v) or seen.setdefault(v, v.isoformat()) for v in values
        ]
    if kind == "uuid" and types == {uuid.UUID}:
        return [str(v) for v in values]
    if kind == "json" and types <= {dict, list}:
        return [
            dumps(v).translate(_ESCAPE) if v else "{}" if type(v) is dict else "[]" for v in values
        ]
    return [_value(v, kind, dumps, f) for v in values]


def _aware(value) -> bool:
    return type(value) is dt.datetime and value.utcoffset() is not None


def _value(value, kind: str, dumps, f: Field) -> str:
    if value is None:
        return NULL
    if kind == "text" and isinstance(value, str):
        return value.translate(_ESCAPE)
    if kind == "int" and type(value) is int:
        return str(value)
    if kind == "bool" and type(value) is bool:
        return "t" if value else "f"
    if kind == "json" and type(value) in (dict, list):
        return dumps(value).translate(_ESCAPE)
    if kind == "datetime" and _aware(value):
        return value.isoformat()
    return _prepared(f.get_db_prep_save(value, connection), dumps)


def _prepared(value: object, dumps=json.dumps) -> str:
    """A value prepared for the database, as COPY text."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, Jsonb):
        return dumps(value.obj).translate(_ESCAPE)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, int | float | Decimal | uuid.UUID | str):
        return str(value).translate(_ESCAPE)
    raise TypeError(f"no COPY text for {type(value).__name__}")
