"""Registry passwords made from an access key: what `aws ecr get-login-password` prints and
`docker login --username AWS` sends.

A password names its access key and when it expires, and carries an HMAC of both under the
installation's token key:

    <access key id>.<expiry, unix seconds>.<hex HMAC-SHA256>

It is checked without storing anything; it signs in as the key's API token (its rights,
looked up at each use), so revoking the key or deleting the token ends it at once, and it ends
by itself after its lifetime (12 hours, as ECR's do).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

KEY_USER = "AWS"
"""The user name these passwords go with (no Baepo user can be named so: names are
lower-case)."""
LIFETIME = timedelta(hours=12)


def _mac(key: bytes, key_id: str, expires: int) -> str:
    message = f"baepo registry password\0{key_id}\0{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def issue(key: bytes, key_id: str, now: datetime) -> tuple[str, datetime]:
    """A password for the access key `key_id`, and when it expires."""
    expires = int((now + LIFETIME).timestamp())
    return f"{key_id}.{expires}.{_mac(key, key_id, expires)}", datetime.fromtimestamp(expires, UTC)


def access_key_of(key: bytes, password: str, now: datetime) -> str | None:
    """The access key id a password was made for, or None if it is not one of ours or has
    expired."""
    key_id, _, rest = password.partition(".")
    stamp, _, mac = rest.partition(".")
    if not stamp.isdigit() or not hmac.compare_digest(mac, _mac(key, key_id, int(stamp))):
        return None
    return key_id if now.timestamp() < int(stamp) else None
