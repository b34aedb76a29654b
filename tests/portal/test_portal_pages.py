"""The client portal's pages through Django's test client: tenancy (404s), deciding in two
steps, errors as messages, constant query counts, throttled sign-in, reset and invitations."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal.models import ClientMembership, TeamMembership
from portal.services import client_user_invite
from quotes.models import Quote, QuoteDecision
from sync.models import OutboxEvent
from tests import factories

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery"


@pytest.fixture
def member():
    return factories.ClientMembershipFactory()


def make_quote(membership, n_items=3, **extra):
    client = membership.client
    fields = {
        "subtotal": Decimal("300.00"),
        "tax_total": Decimal("30.00"),
        "total": Decimal("330.00"),
        "valid_until": timezone.now().date() + timedelta(days=5),
        **extra,
    }
    quote = factories.QuoteFactory(integration=client.integration, client=client, **fields)
    for n in range(n_items):
        factories.QuoteLineItemFactory(
            integration=client.integration,
            quote=quote,
            name=f"Item {n}",
            total=Decimal("100.00"),
            sort_order=n,
        )
    return quote


def test_every_page_404s_for_another_tenants_objects(client, member):
    other = factories.ClientMembershipFactory()
    their_quote = make_quote(other)
    their_job = factories.JobFactory(integration=other.client.integration, client=other.client)
    client.force_login(member.user)
    for url in (
        f"/quotes/{their_quote.pk}/",
        f"/jobs/{their_job.pk}/",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "not yours to see" in response.content.decode()
    for url in (f"/quotes/{their_quote.pk}/decide/", f"/quotes/{their_quote.pk}/retry-writeback/"):
        assert client.post(url, {"action": "approve_all", "step": "confirm"}).status_code == 404
    assert not QuoteDecision.objects.exists()
    lists = client.get("/quotes/?show=all").content.decode() + client.get("/jobs/").content.decode()
    assert their_quote.number not in lists and their_job.number not in lists


def test_a_user_with_several_clients_sees_each_and_only_those(client, member):
    second = factories.ClientFactory(integration=member.client.integration, name="Second Site")
    ClientMembership.objects.create(user=member.user, client=second)
    mine = make_quote(member)
    also_mine = factories.QuoteFactory(integration=second.integration, client=second)
    unrelated = factories.QuoteFactory(integration=second.integration)  # same company, not mine
    client.force_login(member.user)
    page = client.get("/quotes/?show=all").content.decode()
    assert mine.number in page and also_mine.number in page and unrelated.number not in page


def test_deciding_takes_a_confirmation_step_then_shows_the_decision(client, member):
    quote = make_quote(member)
    items = list(quote.line_items.order_by("sort_order"))
    client.force_login(member.user)
    form = {
        "action": "approve_selected",
        "line_items": [items[0].pk, items[2].pk],
        "notes": "Mornings only",
    }
    review = client.post(f"/quotes/{quote.pk}/decide/", {**form, "step": "review"})
    assert review.status_code == 200
    text = review.content.decode()
    assert "Approve 2 of 3 items" in text and "USD 220.00" in text  # 200 + 10% tax
    assert not QuoteDecision.objects.exists()  # nothing decided before confirming
    done = client.post(f"/quotes/{quote.pk}/decide/", {**form, "step": "confirm"}, follow=True)
    text = done.content.decode()
    assert "You approved the chosen items" in text
    assert "Partly approved" in text and "Mornings only" in text
    assert 'data-writeback="pending"' in text
    decision = QuoteDecision.objects.get()
    assert set(decision.approved_line_items.values_list("pk", flat=True)) == {
        items[0].pk,
        items[2].pk,
    }


def test_reject_without_a_reason_is_a_message_not_an_error(client, member):
    quote = make_quote(member)
    client.force_login(member.user)
    response = client.post(
        f"/quotes/{quote.pk}/decide/", {"action": "reject", "reason": " ", "step": "confirm"}
    )
    assert response.status_code == 422
    assert "Please give a reason" in response.content.decode()
    assert not QuoteDecision.objects.exists()


def test_a_decided_or_expired_quote_offers_no_decision(client, member):
    decided = make_quote(member)
    expired = make_quote(member, valid_until=timezone.now().date() - timedelta(days=1))
    client.force_login(member.user)
    client.post(
        f"/quotes/{decided.pk}/decide/", {"action": "reject", "reason": "No", "step": "confirm"}
    )
    again = client.post(
        f"/quotes/{decided.pk}/decide/", {"action": "approve_all", "step": "confirm"}, follow=True
    )
    assert "already been decided" in again.content.decode()
    page = client.get(f"/quotes/{expired.pk}/").content.decode()
    assert "expired on" in page and 'value="approve_all"' not in page
    assert QuoteDecision.objects.count() == 1


def test_write_back_state_and_staff_retry(client, member):
    quote = make_quote(member)
    client.force_login(member.user)
    client.post(f"/quotes/{quote.pk}/decide/", {"action": "approve_all", "step": "confirm"})
    event = OutboxEvent.objects.get()
    event.status, event.last_error = OutboxEvent.Status.DEAD, "ProviderValidationError: no"
    event.save()
    page = client.get(f"/quotes/{quote.pk}/").content.decode()
    assert "Failed" in page and "Retry sending" not in page  # client users cannot retry
    assert client.post(f"/quotes/{quote.pk}/retry-writeback/").status_code == 404
    staff = factories.UserFactory()
    TeamMembership.objects.create(user=staff, company=quote.integration.company, role="admin")
    client.force_login(staff)
    page = client.get(f"/quotes/{quote.pk}/").content.decode()
    assert "Retry sending to" in page and "ProviderValidationError" in page
    client.post(f"/quotes/{quote.pk}/retry-writeback/")
    event.refresh_from_db()
    assert event.status == OutboxEvent.Status.PENDING
    OutboxEvent.objects.filter(pk=event.pk).update(
        status=OutboxEvent.Status.SENT, sent_at=timezone.now()
    )
    assert "Sent to" in client.get(f"/quotes/{quote.pk}/").content.decode()


def test_job_list_filters_search_and_bad_dates(client, member):
    integration = member.client.integration
    now = timezone.now()
    factories.JobFactory(
        integration=integration,
        client=member.client,
        number="J-OLD",
        status="completed",
        scheduled_start=now - timedelta(days=40),
    )
    factories.JobFactory(
        integration=integration,
        client=member.client,
        number="J-SOON",
        summary="Leaking tap",
        status="scheduled",
        scheduled_start=now + timedelta(days=2),
    )
    client.force_login(member.user)
    assert "J-OLD" not in client.get("/jobs/?status=scheduled").content.decode()
    assert "J-SOON" in client.get("/jobs/?q=leaking").content.decode()
    since = (now - timedelta(days=1)).date().isoformat()
    page = client.get(f"/jobs/?from={since}").content.decode()
    assert "J-SOON" in page and "J-OLD" not in page
    bad = client.get("/jobs/?from=31/12/2026")
    assert bad.status_code == 400 and "Enter a date like" in bad.content.decode()


def _queries(client, url):
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_each_page_runs_a_constant_number_of_queries(client, member):
    integration = member.client.integration

    def grow(n):
        for _ in range(n):
            quote = make_quote(member, n_items=2)
            job = factories.JobFactory(
                integration=integration,
                client=member.client,
                scheduled_start=timezone.now() + timedelta(days=1),
            )
            quote.job = job
            quote.save()

    grow(2)
    client.force_login(member.user)
    quote = Quote.objects.filter(client=member.client).first()
    urls = ["/", "/quotes/", "/quotes/?show=all", "/jobs/", f"/quotes/{quote.pk}/"]
    job_url = f"/jobs/{quote.job_id}/"
    before = {url: _queries(client, url) for url in [*urls, job_url]}
    grow(8)
    for n in range(20):
        factories.QuoteLineItemFactory(integration=integration, quote=quote, name=f"Extra {n}")
    after = {url: _queries(client, url) for url in [*urls, job_url]}
    assert before == after


def test_sign_in_is_throttled_per_account_with_a_clear_message(client, settings):
    from django.core.cache import cache

    cache.clear()
    settings.LOGIN_FAILURES_PER_ACCOUNT = 3
    user = factories.UserFactory()
    for _ in range(3):
        assert client.post("/login/", {"username": user.email, "password": "x"}).status_code == 200
    blocked = client.post("/login/", {"username": user.email, "password": PASSWORD})
    assert blocked.status_code == 429
    assert "Too many sign-in attempts" in blocked.content.decode()
    cache.clear()
    assert client.post("/login/", {"username": user.email, "password": PASSWORD}).status_code == 302


def test_sign_in_is_throttled_per_ip(client, settings):
    from django.core.cache import cache

    cache.clear()
    settings.LOGIN_FAILURES_PER_IP = 4
    for n in range(4):
        client.post("/login/", {"username": f"nobody{n}@example.com", "password": "x"})
    user = factories.UserFactory()
    response = client.post("/login/", {"username": user.email, "password": PASSWORD})
    assert response.status_code == 429
    cache.clear()


def test_password_reset_by_email(client):
    user = factories.UserFactory()
    client.post("/password-reset/", {"email": user.email})
    link = re.search(r"http://\S+/password-reset/\S+/\S+/", mail.outbox[0].body).group(0)
    form = client.get(link, follow=True)
    assert "Choose a new password" in form.content.decode()
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a-new-long-passphrase", "new_password2": "a-new-long-passphrase"},
        follow=True,
    )
    assert "Password saved" in done.content.decode()
    user.refresh_from_db()
    assert user.check_password("a-new-long-passphrase")


def test_an_invitation_link_works_once(client, member):
    admin = factories.UserFactory()
    user, link = client_user_invite(
        client=member.client, email="New.Person@Example.com", invited_by=admin, base_url="http://t"
    )
    assert user.email == "new.person@example.com" and not user.has_usable_password()
    assert ClientMembership.objects.filter(user=user, client=member.client).exists()
    path = link.removeprefix("http://t")
    form = client.get(path, follow=True)
    assert "Welcome to Fieldbridge" in form.content.decode()
    signed_in = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "my-own-passphrase-1", "new_password2": "my-own-passphrase-1"},
        follow=True,
    )
    assert member.client.name in signed_in.content.decode()  # signed in, on the dashboard
    client.logout()
    again = client.get(path, follow=True)
    assert "expired or was already used" in again.content.decode()


def test_impossible_dates_nul_bytes_and_bad_tokens_never_500(client, member):
    client.force_login(member.user)
    bad = client.get("/jobs/?from=2026-02-30&to=2026-13-01")
    assert bad.status_code == 400 and "Enter a date like" in bad.content.decode()
    assert client.get("/jobs/?q=a%00b").status_code == 200
    assert client.get("/quotes/?q=a%00b").status_code == 200
    import base64

    token = base64.urlsafe_b64encode(b"[null, 1e400]").decode().rstrip("=")
    assert client.get(f"/quotes/?show=all&after={token}").status_code == 200


def test_losing_a_race_shows_the_winning_decision(client, member):
    from quotes.services import quote_reject

    quote = make_quote(member)
    client.force_login(member.user)
    client.get(f"/quotes/{quote.pk}/")  # the page is open in this browser...
    quote_reject(user=member.user, quote_id=quote.pk, reason="decided elsewhere")  # ...and another
    response = client.post(
        f"/quotes/{quote.pk}/decide/", {"action": "approve_all", "step": "confirm"}, follow=True
    )
    page = response.content.decode()
    assert "already been decided" in page
    assert "decided elsewhere" in page and 'value="approve_all"' not in page
    assert QuoteDecision.objects.count() == 1


def test_decide_url_by_get_goes_back_to_the_quote(client, member):
    quote = make_quote(member)
    client.force_login(member.user)
    response = client.get(f"/quotes/{quote.pk}/decide/")
    assert response.status_code == 302 and response["Location"] == f"/quotes/{quote.pk}/"


def test_expired_quotes_are_not_awaiting_a_decision(client, member):
    expired = make_quote(member, valid_until=timezone.now().date() - timedelta(days=3))
    live = make_quote(member)
    client.force_login(member.user)
    page = client.get("/").content.decode()
    assert live.number in page and expired.number not in page


def test_confirm_total_matches_the_quote_page_when_the_provider_gives_no_subtotal(client, member):
    # ServiceM8 gives only the job's tax-inclusive total: subtotal and tax come from the items.
    quote = make_quote(member, subtotal=Decimal("0"), tax_total=Decimal("0"))
    items = list(quote.line_items.order_by("sort_order"))
    client.force_login(member.user)
    detail = client.get(f"/quotes/{quote.pk}/").content.decode()
    assert "USD 300.00" in detail and "USD 30.00" in detail  # subtotal, tax (330 - 300)
    review = client.post(
        f"/quotes/{quote.pk}/decide/",
        {"action": "approve_selected", "line_items": [items[0].pk, items[1].pk]},
    ).content.decode()
    assert "USD 220.00" in review  # 200 + 10% tax, as the quote page's running total says


def test_times_show_in_the_business_time_zone(client, member):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    company = member.client.integration.company
    company.timezone = "Australia/Sydney"
    company.save()
    start = datetime(2026, 12, 1, 9, 0, tzinfo=ZoneInfo("Australia/Sydney"))
    job = factories.JobFactory(
        integration=member.client.integration, client=member.client, scheduled_start=start
    )
    client.force_login(member.user)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "1 Dec 2026, 09:00" in page
    assert job.number in client.get("/jobs/?from=2026-12-01&to=2026-12-01").content.decode()


def test_client_ip_behind_trusted_proxies(rf, settings):
    from portal.views import client_ip

    request = rf.get("/", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9", REMOTE_ADDR="10.0.0.2")
    settings.PORTAL_NUM_PROXIES = 0
    assert client_ip(request) == "10.0.0.2"
    settings.PORTAL_NUM_PROXIES = 1
    assert client_ip(request) == "203.0.113.9"  # not the spoofable left-most hop


def test_exports_hold_only_what_the_user_may_see_and_defuse_formulas(client, member):
    mine = make_quote(member, title='=HYPERLINK("http://evil")')
    other = factories.QuoteFactory(number="Q-THEIRS")
    job = factories.JobFactory(integration=member.client.integration, client=member.client)
    factories.JobFactory(number="J-THEIRS")
    client.force_login(member.user)
    response = client.get("/quotes/export.csv?show=all")
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert mine.number in body and other.number not in body
    assert "'=HYPERLINK" in body
    jobs = b"".join(client.get("/jobs/export.csv").streaming_content).decode("utf-8-sig")
    assert job.number in jobs and "J-THEIRS" not in jobs
    assert client.get("/jobs/export.csv?from=2026-02-30").status_code == 400


def test_exports_and_awaiting_use_the_business_day(client, member):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    company = member.client.integration.company
    company.timezone = "Pacific/Kiritimati"  # UTC+14: its "today" is often UTC's tomorrow
    company.save()
    nine_local = datetime(2026, 12, 1, 9, 0, tzinfo=ZoneInfo("Pacific/Kiritimati"))
    factories.JobFactory(
        integration=member.client.integration, client=member.client, scheduled_start=nine_local
    )
    local_today = timezone.now().astimezone(ZoneInfo("Pacific/Kiritimati")).date()
    expired_yesterday = make_quote(member, valid_until=local_today - timedelta(days=1))
    client.force_login(member.user)
    body = b"".join(client.get("/jobs/export.csv").streaming_content).decode("utf-8-sig")
    assert "2026-12-01T09:00:00+14:00" in body
    assert expired_yesterday.number not in client.get("/").content.decode()


def test_search_by_client_name_is_not_crowded_out_by_other_tenants(client, member):
    from portal.search import MAX_CLIENT_MATCHES

    other = factories.IntegrationFactory()
    from portal.models import Client

    Client.objects.bulk_create(
        Client(integration=other, external_id=f"x{n}", name=f"Acme other {n}")
        for n in range(MAX_CLIENT_MATCHES + 5)
    )
    member.client.name = "Acme zzz"
    member.client.save()
    mine = make_quote(member)
    client.force_login(member.user)
    assert mine.number in client.get("/quotes/?show=all&q=Acme").content.decode()


def test_csrf_failures_and_bad_requests_get_designed_pages(member):
    from django.test import Client as BrowserClient

    browser = BrowserClient(enforce_csrf_checks=True)
    browser.force_login(member.user)
    quote = make_quote(member)
    refused = browser.post(f"/quotes/{quote.pk}/decide/", {"action": "approve_all"})
    assert refused.status_code == 403 and "Please try again" in refused.content.decode()
    bad = BrowserClient().get("/", HTTP_HOST="bad host name")
    assert bad.status_code == 400 and "could not understand" in bad.content.decode()
