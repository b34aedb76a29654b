"""The newer synced tables (job contacts, notes, reference records, invoices, payments) are
read-only in the admin and scoped to the company's team like every synced row."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from portal.models import Invoice, InvoiceItem, JobContact, Note, Payment, ReferenceRecord
from tests import factories
from tests.admin.conftest import change_url, changelist_url
from tests.admin.test_tenancy import assert_hidden

pytestmark = pytest.mark.django_db


def rows_for(integration, label: str) -> list:
    client = factories.ClientFactory(integration=integration, name=f"{label} client")
    job = factories.JobFactory(integration=integration, client=client, summary=f"{label} job")
    invoice = Invoice.objects.create(
        integration=integration,
        external_id=f"inv-{label}",
        client=client,
        job=job,
        number=f"INV-{label}",
        issued_on=date(2026, 11, 1),
        total=Decimal("110.00"),
    )
    return [
        JobContact.objects.create(
            integration=integration, external_id=f"jc-{label}", job=job, first_name=label
        ),
        Note.objects.create(
            integration=integration, external_id=f"note-{label}", job=job, body=f"{label} note"
        ),
        ReferenceRecord.objects.create(
            integration=integration,
            external_id=f"job_type:{label}",
            kind="job_type",
            name=f"{label} type",
        ),
        invoice,
        InvoiceItem.objects.create(
            integration=integration,
            external_id=f"ii-{label}",
            invoice=invoice,
            name=f"{label} item",
        ),
        Payment.objects.create(
            integration=integration,
            external_id=f"pay-{label}",
            client=client,
            invoice=invoice,
            payment_reference=f"{label}-chq",
            amount=Decimal("110.00"),
        ),
    ]


def test_each_company_sees_only_its_own_rows_read_only(admin_a, tenant_a, tenant_b):
    mine = rows_for(tenant_a.integration, "Alpha")
    theirs = rows_for(tenant_b.integration, "Bravo")
    for own, foreign in zip(mine, theirs, strict=True):
        if isinstance(own, InvoiceItem):
            continue  # shown inline on its invoice
        page = admin_a.get(changelist_url(type(own)))
        assert page.status_code == 200, type(own).__name__
        body = page.content.decode()
        assert "Alpha" in body and "Bravo" not in body, type(own).__name__
        detail = admin_a.get(change_url(own))
        assert detail.status_code == 200
        assert b'name="_save"' not in detail.content  # read-only: no save button
        assert_hidden(admin_a.get(change_url(foreign)))
    invoice_page = admin_a.get(change_url(mine[3])).content.decode()
    assert "Alpha item" in invoice_page
