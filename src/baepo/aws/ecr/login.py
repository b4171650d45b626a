"""ECR's GetAuthorizationToken: what `aws ecr get-login-password | docker login --username AWS
--password-stdin <registry>` runs on.

The token is base64 of `AWS:<password>`, where the password is a registry password of the
calling access key (the auth room's, 12 hours): `docker login` with it signs in as the key's
API token, with the same rights. `proxyEndpoint` is the URL the client called, where Baepo's
registry answers too.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from baepo.aws import Call, Params
from baepo.aws.ecr.access import REGISTRY_ID

KeyPassword = Callable[[str], tuple[str, datetime]]
"""A registry password for an access key id, and when it expires (`Auth.key_password`)."""


class Login:
    def __init__(self, key_password: KeyPassword) -> None:
        self._key_password = key_password

    def get_authorization_token(self, call: Call, params: Params) -> Mapping[str, Any]:
        registry_ids = params.texts("registryIds", min_items=1, max_items=10) or [call.account]
        for index, registry_id in enumerate(registry_ids):
            if not registry_id.isdigit() or len(registry_id) != 12:
                raise params.error(
                    f"registryIds.{index + 1}",
                    registry_id,
                    f"satisfy regular expression pattern: {REGISTRY_ID}",
                )
        password, expires = self._key_password(call.key_id)
        token = base64.b64encode(f"AWS:{password}".encode()).decode()
        data = {"authorizationToken": token, "expiresAt": expires, "proxyEndpoint": call.endpoint}
        return {"authorizationData": [data for _ in registry_ids]}
