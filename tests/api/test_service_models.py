"""The API's request models are made from the field table (no server needed)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from baepo.api.services import ServiceCreate, ServiceFields
from baepo.service_fields import FIELD_NAMES


def test_the_models_accept_the_tables_fields() -> None:
    assert set(ServiceCreate.model_fields) == {*FIELD_NAMES, "owner"}
    assert set(ServiceFields.model_fields) == set(FIELD_NAMES) - {"name"}


def test_a_change_cannot_name_a_service_and_a_create_must() -> None:
    with pytest.raises(ValidationError):
        ServiceFields.model_validate({"name": "other"})
    with pytest.raises(ValidationError):
        ServiceCreate.model_validate({"image": "x"})
    with pytest.raises(ValidationError):
        ServiceCreate.model_validate({"name": "a", "health_check": {"retries": 3}})
    made = ServiceCreate.model_validate({"name": "a", "cpu": "1 vCPU", "health_check": {}})
    assert made.model_dump(exclude_unset=True) == {"name": "a", "cpu": "1 vCPU", "health_check": {}}
