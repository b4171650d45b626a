"""The registry's HTTP edge (`/v2`): routing, auth, OCI errors, streaming."""

from baepo.registry.web.app import RegistryApp, create_app

__all__ = ["RegistryApp", "create_app"]
