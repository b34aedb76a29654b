"""Route × role × tenant: neither a client user nor company staff can read or change another
tenant's objects through any API endpoint. The routes come from the URL conf, so a new
endpoint is covered (or fails here until its object is named in OBJECTS)."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from portal.models import AuditLog
from quotes.models import Quote, QuoteDecision
from sync.models import OutboxEvent, SyncRun
from tests.api.conftest import FOREIGN, SIBLING, token_client

pytestmark = pytest.mark.django_db

# Which of a tenant's objects a route's URL kwargs name, by the route's namespace.
OBJECTS = {
    "api:companies": "company",
    "api:clients": "client",
    "api:contacts": "contact",
    "api:staff": "staff",
    "api:jobs": "job",
    "api:quotes": "quote",
    "api:sync": "integration",
}
# A body every write endpoint would accept for its own tenant's object.
WRITE_BODY = {"reason": "because", "notes": "", "mode": "full"}
METHODS = ("get", "post", "put", "patch", "delete")


def _walk(patterns, namespace: str):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}:{entry.namespace}" if entry.namespace else namespace
            if namespace == "" and entry.namespace != "api":
                continue
            yield from _walk(entry.url_patterns, inner.lstrip(":"))
        elif isinstance(entry, URLPattern) and namespace.startswith("api") and entry.name:
            view = getattr(entry.callback, "view_class", None)
            methods = [m for m in METHODS if view is not None and hasattr(view, m)]
            kwargs = sorted(entry.pattern.converters)
            for method in methods or ["get"]:
                yield pytest.param(
                    namespace, entry.name, method, kwargs, id=f"{method}-{namespace}:{entry.name}"
                )


ROUTES = list(_walk(get_resolver().url_patterns, ""))
ROLES_AND_TARGETS = [
    pytest.param("client_user", "sibling", id="client_user-other_client"),
    pytest.param("client_user", "foreign", id="client_user-other_company"),
    pytest.param("staff_user", "foreign", id="staff-other_company"),
]


def test_every_api_route_is_in_the_matrix():
    assert len(ROUTES) >= 15
    for param in ROUTES:
        namespace, name, _method, kwargs = param.values
        assert not kwargs or namespace in OBJECTS, (
            f"{namespace}:{name} takes {kwargs}: name its object in OBJECTS"
        )


def _state() -> tuple:
    return (
        QuoteDecision.objects.count(),
        OutboxEvent.objects.count(),
        SyncRun.objects.count(),
        AuditLog.objects.count(),
        tuple(Quote.objects.order_by("pk").values_list("status", flat=True)),
    )


@pytest.fixture
def no_broker(monkeypatch):
    from sync import control

    monkeypatch.setattr(control.celery_app, "send_task", lambda *a, **k: None)


@pytest.mark.parametrize(("role", "target"), ROLES_AND_TARGETS)
@pytest.mark.parametrize(("namespace", "name", "method", "kwargs"), ROUTES)
def test_other_tenants_objects_are_404(
    world, no_broker, namespace, name, method, kwargs, role, target
):
    api = token_client(getattr(world, role))
    before = _state()
    if kwargs:
        obj = getattr(getattr(world, target), OBJECTS[namespace])
        url = reverse(f"{namespace}:{name}", kwargs=dict.fromkeys(kwargs, obj.pk))
        response = getattr(api, method)(url, WRITE_BODY if method != "get" else None, format="json")
        assert response.status_code == 404, (url, response.content)
        assert response.json()["error"]["code"] == "not_found"
    else:
        url = reverse(f"{namespace}:{name}")
        response = getattr(api, method)(
            url, {"include": "activities,materials,attachments"} if method == "get" else WRITE_BODY
        )
        body = response.content.decode()
        assert FOREIGN not in body, url
        if role == "client_user":
            assert SIBLING not in body, url
    assert _state() == before


@pytest.mark.parametrize(
    ("namespace", "name", "method", "kwargs"),
    [p for p in ROUTES if p.values[3] and p.values[2] == "get"],
)
def test_the_same_routes_serve_the_callers_own_objects(world, namespace, name, method, kwargs):
    """The control: the 404s above are about tenancy, not about malformed requests."""
    api = token_client(world.staff_user)
    obj = getattr(world.home, OBJECTS[namespace])
    response = api.get(reverse(f"{namespace}:{name}", kwargs=dict.fromkeys(kwargs, obj.pk)))
    assert response.status_code == 200, response.content
