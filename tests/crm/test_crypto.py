import pytest
from cryptography.fernet import Fernet

from crm import crypto


def test_it_round_trips_a_secret_and_never_stores_it_plainly():
    token = crypto.encrypt("access-token-123")
    assert "access-token-123" not in token
    assert crypto.decrypt(token) == "access-token-123"


def test_it_decrypts_with_an_old_key_and_rotates_to_the_new_one(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FERNET_KEYS = [old]
    token = crypto.encrypt("s3cret")
    settings.FERNET_KEYS = [new, old]
    assert crypto.decrypt(token) == "s3cret"
    rotated = crypto.rotate(token)
    settings.FERNET_KEYS = [new]
    assert crypto.decrypt(rotated) == "s3cret"
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token)
