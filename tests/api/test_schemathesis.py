"""Property-based tests of the whole API against the committed schema (openapi.yaml, which
test_schema.py keeps true to the code): Schemathesis generates valid requests for every
operation, once as a client user and once as company staff, and each response must be a
non-5xx, documented status with a body and headers that match the schema.

About half of the generated path ids are swapped for ids of objects the caller may see, so
the happy paths (200/201, 409, 422) are exercised as well as the 404s. Providers and the
Celery broker are replaced by stand-ins: no network, no queue."""

from pathlib import Path

import pytest
import requests
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import token_client

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = 8

schema = schemathesis.openapi.from_path(ROOT / "openapi.yaml")
# Valid requests only: the point is that what the schema allows, the server handles.
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE], max_examples=EXAMPLES, deterministic=True, database="none"
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Which of the caller's objects a path id stands for, by path prefix.
OWN_OBJECTS = {
    "/api/v1/companies/": "company",
    "/api/v1/clients/": "client",
    "/api/v1/contacts/": "contact",
    "/api/v1/staff/": "staff",
    "/api/v1/jobs/": "job",
    "/api/v1/quotes/": "quote",
    "/api/v1/integrations/": "integration",
}


@pytest.fixture(scope="module")
def wsgi_app():
    # As Django's test client does: a request must not close the test's DB connection (its
    # transaction holds the fixtures).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture(params=["client_user", "staff_user"])
def caller(request, world, monkeypatch):
    from sync import control

    def offline(*args, **kwargs):
        raise requests.ConnectionError("schemathesis: no network in tests")

    monkeypatch.setattr(requests.Session, "send", offline)
    monkeypatch.setattr(control.celery_app, "send_task", lambda *a, **k: None)
    api = token_client(getattr(world, request.param))
    return world, api._credentials["HTTP_AUTHORIZATION"]


def _own_ids(case, world) -> None:
    for name, value in list(case.path_parameters.items()):
        if isinstance(value, int) and value % 2 == 0:
            for prefix, attr in OWN_OBJECTS.items():
                if case.path.startswith(prefix):
                    case.path_parameters[name] = getattr(world.home, attr).pk


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case, caller, wsgi_app):
    world, authorization = caller
    _own_ids(case, world)
    case.call_and_validate(app=wsgi_app, headers={"Authorization": authorization}, checks=CHECKS)
