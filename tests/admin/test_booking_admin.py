"""Bookings in the admin: created through booking_create (its field errors on the form),
company-scoped, read-only once made, with their delivery state and a retry for dead ones."""

from __future__ import annotations

import pytest
from django.db import transaction

from portal.models import AuditLog, Booking, TeamMembership
from sync.models import OutboxEvent
from tests import factories
from tests.admin.conftest import admin_url, change_url, changelist_url

pytestmark = pytest.mark.django_db

ADD_URL = admin_url("portal/booking/add/")


def form(integration, **overrides) -> dict:
    data = {
        "integration": integration.pk,
        "client": "",
        "customer_name": "Robin Client",
        "email": "robin@example.com",
        "phone": "0400 000 001",
        "street": "3 Bay St",
        "street2": "",
        "city": "Sydney",
        "region": "NSW",
        "postal_code": "2000",
        "country": "AU",
        "summary": "Blocked drain",
        "description": "",
        "priority": "normal",
        "scheduled_start": "2026-07-01T09:00:00+10:00",
        "scheduled_end": "",
        "options": '{"status": "Quote"}',
    }
    return {**data, **overrides}


def test_a_team_admin_creates_a_booking_through_the_service(admin_a, tenant_a):
    response = admin_a.post(ADD_URL, form(tenant_a.integration))

    booking = Booking.objects.get()
    assert response.status_code == 302 and response["Location"] == change_url(booking)
    assert booking.integration == tenant_a.integration and booking.created_by == tenant_a.admin
    assert booking.options == {"status": "Quote"} and booking.status == Booking.Status.PENDING
    event = booking.outbox_event
    assert event.action == "job.create" and event.status == OutboxEvent.Status.PENDING
    assert event.payload["customer"]["name"] == "Robin Client"
    assert AuditLog.objects.filter(action="booking.create", target_id=str(booking.pk)).exists()


def test_the_services_field_errors_are_shown_on_the_form(admin_a, tenant_a):
    response = admin_a.post(
        ADD_URL,
        form(
            tenant_a.integration,
            customer_name="",
            email="nope",
            country="Australia",
            scheduled_start="tomorrow",
            options='{"status": "Completed"}',
        ),
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "customer_name" in errors and "email" in errors and "country" in errors
    assert "scheduled_start" in errors
    assert any("options.status" in m for m in errors["options"])
    assert Booking.objects.count() == 0 and OutboxEvent.objects.count() == 0
    assert b"This field is required." in response.content


def test_malformed_options_and_another_companys_integration_are_refused(
    admin_a, tenant_a, tenant_b
):
    response = admin_a.post(ADD_URL, form(tenant_a.integration, options="[1,"))
    assert "Not valid JSON" in str(response.context["form"].errors["options"])
    response = admin_a.post(ADD_URL, form(tenant_b.integration))
    assert "integration" in response.context["form"].errors
    assert Booking.objects.count() == 0


def test_a_disabled_integration_is_a_field_error(admin_a, tenant_a):
    tenant_a.integration.enabled = False
    tenant_a.integration.save(update_fields=["enabled"])
    response = admin_a.post(ADD_URL, form(tenant_a.integration))
    assert response.status_code == 200
    assert "The integration is disabled." in str(response.context["form"].errors["integration"])


def make_booking(tenant, **event_fields) -> Booking:
    from portal.bookings import booking_create

    with transaction.atomic():
        booking = booking_create(
            integration=tenant.integration,
            data={
                "customer_name": "Sam",
                "street": "1 Road",
                "city": "Town",
                "summary": "Fix it",
            },
            actor=tenant.admin,
        )
    if event_fields:
        OutboxEvent.objects.filter(pk=booking.outbox_event_id).update(**event_fields)
    return booking


def test_the_page_shows_the_delivery_state_error_and_field_errors(admin_a, tenant_a):
    booking = make_booking(
        tenant_a,
        status=OutboxEvent.Status.DEAD,
        attempts=3,
        last_error="ProviderValidationError: servicem8 refused",
        field_errors={"customer.external_id": ["No such ServiceM8 company."]},
    )
    response = admin_a.get(change_url(booking))
    content = response.content.decode()
    assert response.status_code == 200
    assert "Dead" in content and "servicem8 refused" in content
    assert "customer.external_id" in content and "No such ServiceM8 company." in content
    assert 'name="_save"' not in content  # read-only
    listing = admin_a.get(changelist_url(Booking)).content.decode()
    assert booking.reference in listing and "Dead" in listing


def test_retry_replays_dead_deliveries_only_and_audits(admin_a, tenant_a):
    dead = make_booking(tenant_a, status=OutboxEvent.Status.DEAD, attempts=8, last_error="boom")
    Booking.objects.filter(pk=dead.pk).update(status=Booking.Status.FAILED)
    pending = make_booking(tenant_a)
    response = admin_a.post(
        changelist_url(Booking),
        {"action": "retry_failed", "_selected_action": [dead.pk, pending.pk]},
        follow=True,
    )
    assert response.status_code == 200
    event = OutboxEvent.objects.get(pk=dead.outbox_event_id)
    assert event.status == OutboxEvent.Status.PENDING and event.attempts == 0
    dead.refresh_from_db()
    assert dead.status == Booking.Status.PENDING
    assert OutboxEvent.objects.get(pk=pending.outbox_event_id).attempts == 0
    assert AuditLog.objects.filter(action="outbox_event.retry", target_id=str(event.pk)).exists()
    text = response.content.decode()
    assert "1 booking(s) queued" in text and "1 booking(s) skipped" in text


def test_dispatchers_see_but_cannot_add_or_retry(client, tenant_a, tenant_b):
    ours = make_booking(tenant_a, status=OutboxEvent.Status.DEAD)
    theirs = make_booking(tenant_b)
    client.force_login(tenant_a.dispatcher)
    assert client.get(ADD_URL).status_code == 403
    listing = client.get(changelist_url(Booking)).content.decode()
    assert ours.reference in listing and theirs.reference not in listing
    client.post(changelist_url(Booking), {"action": "retry_failed", "_selected_action": [ours.pk]})
    assert OutboxEvent.objects.get(pk=ours.outbox_event_id).status == OutboxEvent.Status.DEAD
    assert client.get(change_url(theirs)).status_code == 302  # "doesn't exist"


def test_the_client_choice_is_limited_to_the_users_companies(admin_a, tenant_a, tenant_b):
    mine = factories.ClientFactory(integration=tenant_a.integration, external_id="c-1")
    other = factories.ClientFactory(integration=tenant_b.integration, external_id="c-2")
    choices = admin_a.get(ADD_URL).context["form"].fields["client"].queryset
    assert mine in choices and other not in choices
    response = admin_a.post(ADD_URL, form(tenant_a.integration, client=mine.pk))
    assert response.status_code == 302
    assert Booking.objects.get().outbox_event.payload["customer"]["external_id"] == "c-1"


def test_an_admin_of_one_company_cannot_retry_where_they_only_dispatch(client, tenant_a, tenant_b):
    """The list shows both companies' bookings to someone who is an admin of A and a
    dispatcher of B; the retry acts on A's only."""
    TeamMembership.objects.create(
        user=tenant_a.admin, company=tenant_b.company, role=TeamMembership.Role.DISPATCHER
    )
    ours = make_booking(tenant_a, status=OutboxEvent.Status.DEAD, attempts=8)
    theirs = make_booking(tenant_b, status=OutboxEvent.Status.DEAD, attempts=8)
    client.force_login(tenant_a.admin)
    listing = client.get(changelist_url(Booking)).content.decode()
    assert ours.reference in listing and theirs.reference in listing
    client.post(
        changelist_url(Booking),
        {"action": "retry_failed", "_selected_action": [ours.pk, theirs.pk]},
    )
    assert OutboxEvent.objects.get(pk=ours.outbox_event_id).status == OutboxEvent.Status.PENDING
    assert OutboxEvent.objects.get(pk=theirs.outbox_event_id).status == OutboxEvent.Status.DEAD
