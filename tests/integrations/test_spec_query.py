"""The query-parameter check added beside openapi-core's request validation (which lets an
undeclared query parameter through)."""

import pytest
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest
from werkzeug.datastructures import MultiDict

from tests.integrations.sandbox.test_spec_conformance import SPECS
from tests.integrations.spec_query import assert_query_declared, declared_query_names

pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning")
HOST = "https://api.servicetitan.io"


@pytest.fixture(scope="module")
def crm() -> OpenAPI:
    raw = yaml.safe_load((SPECS / "servicetitan" / "tenant-crm-v2.yml").read_text())
    return OpenAPI.from_dict(raw, config=Config(spec_validator_cls=None))


def request(path: str, *query: tuple[str, str]) -> MockRequest:
    return MockRequest(
        host_url=HOST,
        method="get",
        path=path,
        args=MultiDict(list(query)),
        headers={"ST-App-Key": "ak1.test", "Authorization": "Bearer t"},
    )


def test_openapi_core_alone_lets_an_undeclared_parameter_through(crm):
    bogus = request("/crm/v2/tenant/42/customers", ("page", "1"), ("modifiedSince", "x"))
    crm.validate_request(bogus)  # the gap: no error
    with pytest.raises(AssertionError, match="modifiedSince"):
        assert_query_declared(crm, bogus)


def test_declared_parameters_pass_and_refs_are_resolved(crm):
    ok = request(
        "/crm/v2/tenant/42/customers",
        ("page", "1"),
        ("pageSize", "5000"),
        ("active", "Any"),
        ("modifiedOnOrAfter", "2026-01-01T00:00:00Z"),
    )
    assert_query_declared(crm, ok)
    assert {"page", "pageSize", "active", "modifiedOnOrAfter"} <= declared_query_names(crm, ok)
    one = request("/crm/v2/tenant/42/customers/5", ("active", "Any"))
    with pytest.raises(AssertionError, match="active"):
        assert_query_declared(crm, one)  # a GET by id declares no query parameters
