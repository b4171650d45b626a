"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) with one key kept in the state directory.

A service's secret values are sealed before they reach the database and opened only to start an
instance; everything a person reads shows `spec.MASK` instead. The key file is created (0600)
on first start and must be kept with the database: without it, stored secrets cannot be opened.

`cryptography` (its Rust core alone is megabytes of resident memory) is imported at the first
seal or open, not at start: an installation whose services have no secrets never loads it. The
key's form (32 bytes in url-safe base64, as Fernet checks it) is checked at start all the same.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from baepo.control.errors import SecretsUnreadable
from baepo.keyfiles import load_or_create

if TYPE_CHECKING:
    from cryptography.fernet import Fernet


class SecretBox:
    def __init__(self, key: bytes) -> None:
        try:
            raw = base64.urlsafe_b64decode(key)  # as Fernet reads its key
        except (binascii.Error, TypeError) as exc:
            raise SecretsUnreadable(f"the secrets key is not a Fernet key: {exc}") from exc
        if len(raw) != 32:
            raise SecretsUnreadable(
                "the secrets key is not a Fernet key: it must be 32 url-safe base64-encoded bytes"
            )
        self._key = key
        self._fernet: Fernet | None = None
        self._fingerprint = hashlib.sha256(b"baepo installation\0" + key).hexdigest()[:16]

    @property
    def fingerprint(self) -> str:
        """A stable public name for this key, hence for this Baepo installation (its state dir):
        containers are labelled with it so two Baepos sharing one engine never touch each
        other's instances."""
        return self._fingerprint

    @staticmethod
    def generate_key() -> bytes:
        """A new key, as `Fernet.generate_key` makes one."""
        return base64.urlsafe_b64encode(os.urandom(32))

    def seal(self, plaintext: str) -> str:
        return self._cipher().encrypt(plaintext.encode()).decode("ascii")

    def open(self, token: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._cipher().decrypt(token.encode("ascii")).decode()
        except (InvalidToken, UnicodeError) as exc:
            raise SecretsUnreadable(
                "a stored secret cannot be opened with this secrets key (was the key file "
                "replaced?)"
            ) from exc

    def _cipher(self) -> Fernet:
        if self._fernet is None:  # two threads may both make one: either is the same cipher
            from cryptography.fernet import Fernet

            self._fernet = Fernet(self._key)
        return self._fernet


def load_or_create_secret_key(path: Path) -> bytes:
    """The key in `path`; created (0600) on first call and kept, so secrets survive restarts."""
    try:
        return load_or_create(path, SecretBox.generate_key).strip()
    except OSError as exc:
        raise SecretsUnreadable(f"cannot read or create the secrets key {path}: {exc}") from exc
