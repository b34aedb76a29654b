"""Bookings: requests for work that become jobs at the provider.

`booking_create` validates the input, stores the Booking and records its `job.create` outbox
event in one transaction; the relay delivers it (`Provider.perform("job.create", payload)`),
and `booking_outbox_result` (called by the relay) records the provider's job id, or the
failure, on the booking.

The `job.create` payload is the same for every provider (`booking_payload`):

    {"reference": "bk_…",
     "customer": {"name", "email", "phone", "external_id"},   # external_id: a synced client's
     "address": {"street", "street2", "city", "region", "postal_code", "country"},
     "job": {"summary", "description", "priority", "scheduled_start", "scheduled_end"},
     "options": {…}}                                          # the provider's own references

and a provider answers `{"job_id": …, "customer_id": …, "location_id": … (if any),
"created": bool}`; `created` is False when the job already existed (a re-delivery found it).
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from integrations.base import Capability
from integrations.models import Integration
from integrations.services import integration_write_refusal
from portal.models import AuditLog, Booking, Client, Job, User
from sync.outbox import outbox_event_enqueue

JOB_CREATE = "job.create"
REQUIRED = ("customer_name", "street", "city", "summary")
CUSTOMER_FIELDS = (
    "customer_name",
    "email",
    "phone",
    "street",
    "street2",
    "city",
    "region",
    "postal_code",
    "country",
)
SCHEDULE_FIELDS = ("scheduled_start", "scheduled_end")
TEXT_FIELDS = (*CUSTOMER_FIELDS, "summary", "description")
# Every input `booking_create` reads from `data` except `options`, in form order.
INPUT_FIELDS = (*TEXT_FIELDS, "priority", *SCHEDULE_FIELDS)


def _clean(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        value = data.get(name, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            errors[name] = ["Must be text."]
            continue
        values[name] = value.strip()
    for name in REQUIRED:
        if name not in errors and not values.get(name):
            errors[name] = ["This field is required."]
    for name in TEXT_FIELDS:
        # The columns' own limits: a longer value would fail in the database, not here.
        limit = Booking._meta.get_field(name).max_length
        if name not in errors and limit and len(values.get(name, "")) > limit:
            errors[name] = [f"Ensure this value has at most {limit} characters."]
    if values.get("email"):
        try:
            validate_email(values["email"])
        except ValidationError:
            errors["email"] = ["Enter a valid email address."]
    country = values.get("country", "")
    if country and (len(country) != 2 or not country.isalpha()):
        errors["country"] = ["Use the two-letter ISO country code, e.g. US or AU."]
    values["country"] = country.upper()
    priority = data.get("priority") or Job.Priority.NORMAL
    if priority not in Job.Priority.values:
        errors["priority"] = [f"Choose one of {', '.join(Job.Priority.values)}."]
    values["priority"] = priority
    for name in SCHEDULE_FIELDS:
        value = data.get(name)
        if value in (None, ""):
            values[name] = None
        elif isinstance(value, datetime):
            values[name] = value
        else:
            try:
                values[name] = datetime.fromisoformat(str(value))
            except ValueError:
                errors[name] = ["Enter an ISO 8601 date and time."]
    for name in SCHEDULE_FIELDS:
        value = values.get(name)
        if value is not None and value.tzinfo is None:
            errors.setdefault(name, []).append("Include the time zone offset.")
    start, end = values.get("scheduled_start"), values.get("scheduled_end")
    timed = start and end and not set(SCHEDULE_FIELDS) & set(errors)
    if timed and end < start:
        errors["scheduled_end"] = ["Must not be before the start."]
    options = data.get("options") or {}
    if not isinstance(options, dict):
        errors["options"] = ["Must be an object."]
        options = {}
    values["options"] = options
    return values, errors


def booking_payload(booking: Booking) -> dict[str, Any]:
    return {
        "reference": booking.reference,
        "customer": {
            "name": booking.customer_name,
            "email": booking.email,
            "phone": booking.phone,
            "external_id": booking.client.external_id if booking.client_id else "",
        },
        "address": {
            "street": booking.street,
            "street2": booking.street2,
            "city": booking.city,
            "region": booking.region,
            "postal_code": booking.postal_code,
            "country": booking.country,
        },
        "job": {
            "summary": booking.summary,
            "description": booking.description,
            "priority": booking.priority,
            "scheduled_start": booking.scheduled_start.isoformat()
            if booking.scheduled_start
            else None,
            "scheduled_end": booking.scheduled_end.isoformat() if booking.scheduled_end else None,
        },
        "options": dict(booking.options),
    }


def booking_create(
    *,
    integration: Integration,
    data: dict[str, Any],
    actor: User | None = None,
    client: Client | None = None,
) -> Booking:
    """Store a booking and queue its job creation at the provider. Raises ValidationError with
    field details for bad input or an integration that cannot create jobs."""
    values, errors = _clean(data)
    provider, refusal = integration_write_refusal(
        integration, Capability.WRITE_JOB_CREATE, "creating jobs from bookings"
    )
    if refusal:
        errors["integration"] = [refusal]
    if client is not None and client.integration_id != integration.pk:
        errors["client"] = ["The client belongs to another integration."]
    # The provider's own checks of its `options` (e.g. ServiceM8's job status and uuids).
    option_errors = getattr(provider, "job_options_errors", None) if provider else None
    if option_errors is not None and "options" not in errors:
        errors.update(option_errors(values["options"]))
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        booking = Booking.objects.create(
            integration=integration,
            reference=f"bk_{secrets.token_hex(8)}",
            client=client,
            created_by=actor,
            **values,
        )
        event = outbox_event_enqueue(
            integration=integration,
            action=JOB_CREATE,
            aggregate_type="booking",
            aggregate_id=str(booking.pk),
            payload=booking_payload(booking),
            idempotency_key=f"booking:{booking.reference}",
        )
        booking.outbox_event = event
        booking.save(update_fields=["outbox_event", "updated_at"])
        AuditLog.objects.create(
            company_id=integration.company_id,
            actor=actor,
            action="booking.create",
            target_type="booking",
            target_id=str(booking.pk),
            target_repr=str(booking)[:255],
            after={"reference": booking.reference, "summary": booking.summary},
        )
    return booking


def booking_outbox_result(*, event_id: int, status: str, response: dict | None) -> None:
    """The relay's report on a booking's `job.create` event: sent (with the provider's answer)
    or dead."""
    bookings = Booking.objects.filter(outbox_event_id=event_id)
    now = timezone.now()
    if status == "sent":
        job_id = str((response or {}).get("job_id") or "")
        bookings.update(status=Booking.Status.CREATED, external_job_id=job_id, updated_at=now)
    elif status == "dead":
        bookings.exclude(status=Booking.Status.CREATED).update(
            status=Booking.Status.FAILED, updated_at=now
        )
    elif status == "pending":  # replayed from the dead letters
        bookings.filter(status=Booking.Status.FAILED).update(
            status=Booking.Status.PENDING, updated_at=now
        )
