"""The secret box: Fernet tokens (readable by `cryptography`'s Fernet itself, so secrets stored
by earlier versions still open), a key whose form is checked at start, and `cryptography`
loaded only when a secret is first sealed or opened."""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from baepo.control import SecretBox
from baepo.control.errors import SecretsUnreadable


def test_sealed_secrets_are_fernet_tokens_both_ways() -> None:
    key = SecretBox.generate_key()
    assert len(base64.urlsafe_b64decode(key)) == 32
    box = SecretBox(key)
    assert Fernet(key).decrypt(box.seal("s3cret").encode()) == b"s3cret"
    assert box.open(Fernet(key).encrypt("épée".encode()).decode()) == "épée"


@pytest.mark.parametrize(
    "key",
    [
        b"not a key",
        b"",
        base64.urlsafe_b64encode(b"k" * 31),
        base64.urlsafe_b64encode(b"k" * 33),
        base64.urlsafe_b64encode(b"k" * 32)[:-1],  # padding cut short
        7,
    ],
)
def test_a_key_fernet_refuses_is_refused_at_once(key: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        Fernet(key)  # type: ignore[arg-type]  # wrong types on purpose
    with pytest.raises(SecretsUnreadable):
        SecretBox(key)  # type: ignore[arg-type]  # wrong types on purpose


def test_a_secret_from_another_key_or_garbled_is_unreadable() -> None:
    sealed = SecretBox(SecretBox.generate_key()).seal("s3cret")
    box = SecretBox(SecretBox.generate_key())
    for token in (sealed, sealed[:-4], "", "é", "not a token"):
        with pytest.raises(SecretsUnreadable):
            box.open(token)


def test_cryptography_is_loaded_at_the_first_secret_only() -> None:
    program = (
        "import sys\n"
        "from baepo.control import SecretBox\n"
        "box = SecretBox(SecretBox.generate_key())\n"
        "box.fingerprint\n"
        "print('cryptography' in sys.modules)\n"
        "assert box.open(box.seal('s3cret')) == 's3cret'\n"
        "print('cryptography' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["False", "True"]
