"""The sandbox fixtures, shared with the sync tests."""

from tests.sync.conftest import sandbox, sandbox_clean, sm8_integration, st_integration  # noqa: F401
