import pytest
from django.db import connection

from tests import factories


def test_health_reports_version(client, settings):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": settings.APP_VERSION}
    assert response["X-Request-ID"]


def test_liveness(client):
    assert client.get("/health/live").json() == {"status": "ok"}


@pytest.mark.django_db(transaction=True)
def test_ready_when_database_broker_and_migrations_are_fine(client):
    response = client.get("/health/ready")
    body = response.json()
    assert response.status_code == 200, body
    assert {name: c["status"] for name, c in body["components"].items()} == {
        "database": "ok",
        "migrations": "ok",
        "broker": "ok",
    }


@pytest.fixture
def unreachable_database():
    """Point the live connection at a server that is not there, then restore it."""
    original = dict(connection.settings_dict)
    connection.close()
    # Django keeps an in-memory SQLite test database open through close(); set it aside.
    kept, connection.connection = connection.connection, None
    if connection.vendor == "postgresql":
        connection.settings_dict.update({"HOST": "127.0.0.1", "PORT": "1"})
        connection.settings_dict["OPTIONS"] = {**original.get("OPTIONS", {}), "connect_timeout": 2}
    else:
        connection.settings_dict["NAME"] = "/nonexistent-dir/fieldbridge.sqlite3"
    yield
    if connection.connection is not None:
        connection.close()
    connection.settings_dict.clear()
    connection.settings_dict.update(original)
    connection.connection = kept


@pytest.mark.django_db(transaction=True)
def test_ready_answers_503_when_the_database_cannot_be_reached(client, unreachable_database):
    response = client.get("/health/ready")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["components"]["database"]["status"] == "error"
    assert body["components"]["database"]["error"]
    assert body["components"]["broker"]["status"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_ready_answers_503_when_the_broker_cannot_be_reached(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["components"]["broker"]["status"] == "error"


@pytest.mark.django_db
def test_detailed_needs_staff_or_token(client):
    assert client.get("/health/detailed").status_code == 401
    assert client.get("/health/detailed", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    client.force_login(factories.UserFactory())
    assert client.get("/health/detailed").status_code == 401


@pytest.mark.django_db
def test_detailed_lists_components_and_each_integrations_last_test(client, integration):
    integration.last_test_ok = False
    integration.last_test_message = "Bad API key"
    integration.last_test_latency_ms = 120
    integration.save()
    response = client.get("/health/detailed", HTTP_AUTHORIZATION="Bearer test-health-token")
    body = response.json()
    assert response.status_code == 200, body
    assert set(body["components"]) == {"database", "migrations", "broker", "cache"}
    assert all("response_time_ms" in c for c in body["components"].values())
    [entry] = body["integrations"]
    assert entry["last_test"] == {
        "ok": False,
        "message": "Bad API key",
        "at": None,
        "latency_ms": 120,
    }
    assert "credentials" not in str(body)


def test_request_id_is_reused_when_sane_and_replaced_when_not(client):
    assert (
        client.get("/health/live", HTTP_X_REQUEST_ID="abc12345-proxy")["X-Request-ID"]
        == "abc12345-proxy"
    )
    assert client.get("/health/live", HTTP_X_REQUEST_ID="bad id\n")["X-Request-ID"] != "bad id\n"
