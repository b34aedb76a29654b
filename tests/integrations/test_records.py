"""Normalized records (`integrations.base.record`): frozen dataclasses whose `__init__` fills
the instance in one step, and behaves as the generated one did."""

import dataclasses
import inspect
import pickle
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from integrations import base
from integrations.base import ExternalJobMaterial, ExternalRecord, record

RECORDS = [
    cls for cls in vars(base).values() if isinstance(cls, type) and issubclass(cls, ExternalRecord)
]

MATERIAL = {
    "provider": "servicem8",
    "external_id": "m-1",
    "raw": {"uuid": "m-1"},
    "remote_updated_at": datetime(2026, 1, 5, 9, 30, tzinfo=UTC),
    "job_external_id": "j-1",
    "name": "Copper pipe",
    "quantity": Decimal("2"),
}


def test_every_record_gets_the_one_step_init():
    assert len(RECORDS) >= 18
    for cls in RECORDS:
        assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__", cls
        assert cls.__init__.__code__.co_filename == f"<record {cls.__qualname__}>", cls
        assert cls.__dataclass_params__.frozen and cls.__dataclass_params__.kw_only


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: c.__name__)
def test_the_signature_is_the_dataclass_one(cls):
    params = inspect.signature(cls).parameters
    fields = dataclasses.fields(cls)
    assert list(params) == [f.name for f in fields]
    for f in fields:
        assert params[f.name].kind is inspect.Parameter.KEYWORD_ONLY
        expected = inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
        assert params[f.name].default == expected


def test_fields_defaults_and_the_frozen_instance():
    material = ExternalJobMaterial(**MATERIAL)
    assert vars(material) == {
        **MATERIAL,
        "deleted": False,
        "description": "",
        "unit_price": Decimal("0.00"),
        "total": Decimal("0.00"),
        "sort_order": 0,
        "quote_external_id": None,
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        material.name = "Other"
    with pytest.raises(dataclasses.FrozenInstanceError):
        del material.name
    assert material == ExternalJobMaterial(**MATERIAL)
    assert material != ExternalJobMaterial(**{**MATERIAL, "name": "Other"})
    assert dataclasses.replace(material, name="Other").name == "Other"
    assert pickle.loads(pickle.dumps(material)) == material  # noqa: S301 - our own bytes
    assert "Copper pipe" in repr(material) and "raw=" not in repr(material)


def test_missing_and_unknown_arguments_are_refused():
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'name'"):
        ExternalJobMaterial(**{k: v for k, v in MATERIAL.items() if k != "name"})
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        ExternalJobMaterial(**MATERIAL, bogus=1)
    with pytest.raises(TypeError):
        ExternalJobMaterial("servicem8", "m-1")  # (keyword-only)


def test_a_class_the_one_step_init_cannot_serve_keeps_the_generated_one():
    @record
    class WithFactory(ExternalRecord):
        tags: list = dataclasses.field(default_factory=list)

    assert not WithFactory.__init__.__code__.co_filename.startswith("<record")
    made = WithFactory(provider="p", external_id="x", raw={})
    assert made.tags == [] and WithFactory(provider="p", external_id="y", raw={}).tags == []
    assert made.tags is not WithFactory(provider="p", external_id="z", raw={}).tags
