"""Secrets at rest: Fernet with rotation (``FERNET_KEYS``: the first key encrypts, all decrypt).

Rotate by putting a new key first, deploying, then re-encrypting stored values with ``rotate``;
the old key can be dropped once nothing needs it.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class DecryptionError(Exception):
    """A stored secret could not be decrypted with any configured key."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            f"FERNET_KEYS holds a key that is not a Fernet key: {exc}"
        ) from None


def fernet() -> MultiFernet:
    keys = tuple(settings.FERNET_KEYS)
    if not keys:
        raise ImproperlyConfigured("FERNET_KEYS is empty.")
    return _fernet(keys)


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError("no configured key decrypts this value") from None


def rotate(token: str) -> str:
    """Re-encrypt ``token`` under the first (newest) key."""
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError("no configured key decrypts this value") from None
