"""NUL characters, which PostgreSQL stores in no text or JSON value."""

from __future__ import annotations


def has_nul(value) -> bool:
    """Whether a string, or any key or value inside a dict or list, holds a NUL character."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v) for v in value)
    return False


def nul_replaced(value):
    """The value with every NUL character in it (keys included) replaced by U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {nul_replaced(k): nul_replaced(v) for k, v in value.items()}
    if isinstance(value, list):
        return [nul_replaced(v) for v in value]
    return value
