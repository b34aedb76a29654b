import re

import pytest
from django.core import mail

from portal.models import ClientMembership, TeamMembership
from tests import factories

pytestmark = pytest.mark.django_db


def test_an_admin_invites_a_client_user_by_email(
    client, settings, django_capture_on_commit_callbacks
):
    target = factories.ClientFactory(name="Harbour View")
    admin_user = factories.UserFactory(is_staff=True, is_superuser=True)
    TeamMembership.objects.create(user=admin_user, company=target.integration.company, role="admin")
    client.force_login(admin_user)
    url = f"/{settings.ADMIN_URL}portal/client/"
    form = client.post(url, {"action": "invite_client_user", "_selected_action": [target.pk]})
    assert form.status_code == 200 and "Invite a client user" in form.content.decode()
    bad = client.post(
        url,
        {"action": "invite_client_user", "_selected_action": [target.pk], "email": "nope"},
    )
    assert "Enter a valid email address" in bad.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(
            url,
            {
                "action": "invite_client_user",
                "_selected_action": [target.pk],
                "email": "casey@client.test",
            },
            follow=True,
        )
    assert "Invitation sent to casey@client.test" in done.content.decode()
    assert ClientMembership.objects.filter(user__email="casey@client.test", client=target).exists()
    assert re.search(r"/invitation/\S+/\S+/", mail.outbox[-1].body)
