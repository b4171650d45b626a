"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) with one key kept in the state directory.

A service's secret values are sealed before they reach the database and opened only to start an
instance; everything a person reads shows `spec.MASK` instead. The key file is created (0600)
on first start and must be kept with the database: without it, stored secrets cannot be opened.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from baepo.control.errors import SecretsUnreadable
from baepo.keyfiles import load_or_create


class SecretBox:
    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as exc:
            raise SecretsUnreadable(f"the secrets key is not a Fernet key: {exc}") from exc
        self._fingerprint = hashlib.sha256(b"baepo installation\0" + key).hexdigest()[:16]

    @property
    def fingerprint(self) -> str:
        """A stable public name for this key, hence for this Baepo installation (its state dir):
        containers are labelled with it so two Baepos sharing one engine never touch each
        other's instances."""
        return self._fingerprint

    @staticmethod
    def generate_key() -> bytes:
        return Fernet.generate_key()

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, UnicodeError) as exc:
            raise SecretsUnreadable(
                "a stored secret cannot be opened with this secrets key (was the key file "
                "replaced?)"
            ) from exc


def load_or_create_secret_key(path: Path) -> bytes:
    """The key in `path`; created (0600) on first call and kept, so secrets survive restarts."""
    try:
        return load_or_create(path, Fernet.generate_key).strip()
    except OSError as exc:
        raise SecretsUnreadable(f"cannot read or create the secrets key {path}: {exc}") from exc
