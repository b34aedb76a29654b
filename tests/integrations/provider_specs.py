"""The providers' official specs, for the tests that validate requests and responses against
them with openapi-core.

The specs live outside the repository (``<repo>/../shared/provider-specs``): a missing spec
skips the test locally and fails it in CI. ServiceTitan's module specs are loaded without
validating the spec itself (they do not all pass openapi-spec-validator)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from openapi_core import Config, OpenAPI

SPECS = Path(__file__).resolve().parents[2].parent / "shared" / "provider-specs"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def spec_path(path: Path) -> Path:
    """`path`, or skip (fail in CI) the test if the spec is not there."""
    if not path.is_file():
        message = f"provider spec not found: {path}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def load_st_spec(name: str) -> tuple[OpenAPI, dict]:
    """A ServiceTitan module spec by file name (e.g. tenant-crm-v2.yml): (OpenAPI, raw dict)."""
    raw = yaml.safe_load(spec_path(SPECS / "servicetitan" / name).read_text())
    return OpenAPI.from_dict(raw, config=Config(spec_validator_cls=None)), raw


def load_st_specs(names: dict[str, str]) -> dict[str, tuple[OpenAPI, dict]]:
    """`{module: file name}` → `{module: (OpenAPI, raw dict)}`."""
    return {module: load_st_spec(name) for module, name in names.items()}
