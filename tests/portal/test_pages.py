import pytest
from django.core.management import call_command
from django.utils import timezone

from portal.models import ClientMembership, User
from quotes.models import QuoteDecision
from tests import factories

pytestmark = pytest.mark.django_db


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_client_user_signs_in_with_email_and_sees_only_their_own_clients(client):
    membership = factories.ClientMembershipFactory(client__name="Harbour View")
    mine = factories.QuoteFactory(
        integration=membership.client.integration, client=membership.client, number="Q-MINE"
    )
    factories.QuoteFactory(number="Q-OTHER-TENANT")  # another company's client
    decided = factories.QuoteFactory(
        integration=mine.integration, client=membership.client, number="Q-DECIDED"
    )
    QuoteDecision.objects.create(
        quote=decided, decided_by=membership.user, decided_at=timezone.now(), decision="approve"
    )

    response = client.post(
        "/login/", {"username": membership.user.email.upper(), "password": "correct-horse-battery"}
    )
    assert response.status_code == 302, response.content
    page = client.get(response["Location"]).content.decode()
    assert "Harbour View" in page
    assert "Q-MINE" in page
    assert "Q-OTHER-TENANT" not in page
    assert "Q-DECIDED" not in page


def test_wrong_password_gets_a_message_not_an_error(client):
    user = factories.UserFactory()
    response = client.post("/login/", {"username": user.email, "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct email" in response.content.decode()


def test_deleted_client_disappears_from_the_dashboard(client):
    membership = factories.ClientMembershipFactory(client__name="Gone Pty Ltd")
    membership.client.remote_deleted_at = timezone.now()
    membership.client.save()
    client.force_login(membership.user)
    assert "Gone Pty Ltd" not in client.get("/").content.decode()


def test_seed_demo_prints_credentials_and_is_idempotent(capsys):
    call_command("seed_demo", password="demo-pass-123")
    call_command("seed_demo", password="demo-pass-123")
    out = capsys.readouterr().out
    assert "admin@demo.fieldbridge.test / demo-pass-123" in out
    assert "client@demo.fieldbridge.test / demo-pass-123" in out
    assert User.objects.filter(email__endswith="@demo.fieldbridge.test").count() == 2
    client_user = User.objects.get(email="client@demo.fieldbridge.test")
    assert client_user.check_password("demo-pass-123")
    assert ClientMembership.objects.filter(user=client_user).count() == 1


def test_demo_admin_reaches_the_admin(client):
    call_command("seed_demo", password="demo-pass-123")
    assert client.login(username="admin@demo.fieldbridge.test", password="demo-pass-123")
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/integrations/integration/").status_code == 200
