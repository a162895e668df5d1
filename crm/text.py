"""Text and JSON a database can store: no NUL characters (PostgreSQL keeps them in no text or JSON
value) and no nesting deeper than any real payload has (code that walks JSON recursively, ours
and the standard library's encoder, would otherwise fail with ``RecursionError``)."""

from __future__ import annotations

import json
from typing import Any

MAX_JSON_DEPTH = 64  # WhatsApp's own payloads nest about 10 deep; API bodies about 4


class TooDeep(ValueError):
    """JSON nested deeper than ``MAX_JSON_DEPTH`` (a ``ValueError``, as other malformed JSON)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"nested deeper than {limit} levels")


def json_parsed(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads(raw)``, refusing nesting deeper than ``max_depth`` with ``TooDeep``.

    Raises ``ValueError`` (``UnicodeDecodeError`` and ``json.JSONDecodeError`` are ones) for
    anything that is not JSON. A body with fewer brackets than the limit is not walked at all."""
    try:
        value = json.loads(raw)
    except RecursionError:  # deeper than the interpreter's stack: certainly too deep
        raise TooDeep(max_depth) from None
    opening = (b"[", b"{") if isinstance(raw, bytes | bytearray) else ("[", "{")
    if raw.count(opening[0]) + raw.count(opening[1]) > max_depth and deeper_than(value, max_depth):
        raise TooDeep(max_depth)
    return value


def deeper_than(value: Any, limit: int) -> bool:
    """Whether dicts and lists inside ``value`` nest more than ``limit`` levels (iterative)."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def has_nul(value: Any) -> bool:
    """Whether a string, or any key or value inside a dict or list, holds a NUL character.
    Iterative: a deep value cannot exhaust the stack."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def nul_replaced(value: Any) -> Any:
    """The value with every NUL character in it (keys included) replaced by U+FFFD. Recursive:
    for values already bounded by ``json_parsed``."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {nul_replaced(k): nul_replaced(v) for k, v in value.items()}
    if isinstance(value, list):
        return [nul_replaced(v) for v in value]
    return value
