"""ServiceTitan pricebook writes through the outbox, against the sandbox: a price change and an
image reach ServiceTitan once even when delivered twice; a refused value comes back as field
errors on the event, shown in the admin (outbox event and pricebook item pages)."""

import base64
import hashlib
import io

import pytest
import requests
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse

from integrations.sandbox import accounts
from portal.models import AuditLog, PricebookItem
from portal.pricebook import pricebook_item_image, pricebook_item_update
from sync.models import OutboxEvent
from sync.outbox import outbox_deliver, outbox_event_enqueue
from tests import factories
from tests.integrations.sandbox import st_headers, st_token
from tests.sync.conftest import sandbox_control, sandbox_stats

pytestmark = pytest.mark.django_db(transaction=True)
TENANT = accounts.SERVICETITAN_TENANT.tenant_id
PRICEBOOK = f"/servicetitan/pricebook/v2/tenant/{TENANT}"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


class Titan:
    """Reads the sandbox's ServiceTitan pricebook as a test (not through the provider code)."""

    def __init__(self, sandbox):
        self.root = f"{sandbox.url}{PRICEBOOK}"
        self.headers = st_headers(st_token(sandbox.url))

    def get(self, tail: str, **params) -> dict:
        response = requests.get(
            f"{self.root}/{tail}", params=params, headers=self.headers, timeout=10
        )
        response.raise_for_status()
        return response.json()

    def material(self, skip: int = 0) -> dict:
        return self.get("materials", pageSize=10)["data"][skip]


def local_item(integration, raw: dict, kind: str = "material") -> PricebookItem:
    """The synced row for a sandbox item (as the pricebook sync would write it)."""
    return PricebookItem.objects.create(
        integration=integration,
        external_id=f"{kind}:{raw['id']}",
        kind=kind,
        code=raw.get("code") or "",
        name=raw.get("displayName") or "",
        raw=raw,
    )


def applied(sandbox, key: str) -> int:
    return sandbox_stats(sandbox, "servicetitan").get("writes_applied", {}).get(key, 0)


def deliver_again(event: OutboxEvent) -> OutboxEvent:
    OutboxEvent.objects.filter(pk=event.pk).update(next_attempt_at=None)  # due now
    return outbox_deliver(event_id=event.pk)


def lose_the_answer(sandbox, path: str) -> None:
    """The next PATCH of `path` is applied, then answered 500 (a lost acknowledgement)."""
    sandbox_control(
        sandbox,
        "faults",
        {
            "provider": "servicetitan",
            "queue": [{"apply_then_error": True, "status": 500, "method": "PATCH", "path": path}],
        },
    )


def test_a_price_change_reaches_servicetitan_once_even_when_delivered_again(
    st_integration, sandbox_clean
):
    st = Titan(sandbox_clean)
    raw = st.material()
    item = local_item(st_integration, raw)
    user = factories.UserFactory()
    new_price = "123.45" if raw["price"] != 123.45 else "124.45"
    event = pricebook_item_update(
        item=item, changes={"price": new_price, "description": "Now in blue"}, actor=user
    )
    entry = AuditLog.objects.get(action="pricebook.update", target_id=str(item.pk))
    assert entry.after["price"] == new_price and entry.after["outbox_event"] == event.pk
    assert entry.before["price"] == raw["price"] and entry.actor == user
    path = f"{PRICEBOOK}/materials/{raw['id']}"
    lose_the_answer(sandbox_clean, path)
    event = outbox_deliver(event_id=event.pk)
    assert event.status == "failed" and "500" in event.last_error
    assert st.get(f"materials/{raw['id']}")["price"] == float(new_price)  # it landed
    event = deliver_again(event)
    assert event.status == "sent", event.last_error
    assert event.response["already_done"] is True and event.field_errors == {}
    assert applied(sandbox_clean, f"pricebook/materials/{raw['id']}") == 1
    writes = sandbox_stats(sandbox_clean, "servicetitan")["writes_by_path"]
    assert writes[f"PATCH {path}"] == 1
    after = st.get(f"materials/{raw['id']}")
    assert after["price"] == float(new_price) and after["description"] == "Now in blue"


def test_a_refused_value_comes_back_as_field_errors_shown_in_the_admin(
    st_integration, sandbox_clean, client
):
    st = Titan(sandbox_clean)
    raw = st.material(skip=1)
    item = local_item(st_integration, raw)
    # A rule ServiceTitan has and we do not check (the sandbox's 255-character name limit):
    # queued directly, as a change the portal's own checks would let through.
    with transaction.atomic():
        event = outbox_event_enqueue(
            integration=st_integration,
            action="pricebook.update",
            aggregate_type="portal.PricebookItem",
            aggregate_id=str(item.pk),
            payload={
                "item_external_id": item.external_id,
                "kind": "material",
                "changes": {"displayName": "N" * 300},
            },
            idempotency_key=f"pricebook:{item.pk}:refused",
        )
    event = outbox_deliver(event_id=event.pk)
    assert event.status == "dead" and event.attempts == 1
    assert list(event.field_errors) == ["displayName"]
    message = event.field_errors["displayName"][0]
    assert "255" in message
    assert applied(sandbox_clean, f"pricebook/materials/{raw['id']}") == 0

    admin_user = factories.UserFactory(is_staff=True)
    factories.TeamMembershipFactory(user=admin_user, company=st_integration.company)
    client.force_login(admin_user)
    page = client.get(reverse("admin:sync_outboxevent_change", args=[event.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "<code>displayName</code>" in html and message in html
    listing = client.get(reverse("admin:sync_outboxevent_changelist"))
    assert f"displayName: {message}" in listing.content.decode()
    item_page = client.get(reverse("admin:portal_pricebookitem_change", args=[item.pk]))
    assert item_page.status_code == 200
    assert "<code>displayName</code>" in item_page.content.decode()


def test_an_image_is_uploaded_and_attached_once(st_integration, sandbox_clean):
    st = Titan(sandbox_clean)
    raw = st.material(skip=2)
    item = local_item(st_integration, raw)
    event = pricebook_item_image(
        item=item,
        image=io.BytesIO(PNG),
        file_name="valve.png",
        content_type="image/png",
        actor=None,
    )
    # Queued twice (a double submit): one event, keyed by the content.
    assert (
        pricebook_item_image(
            item=item,
            image=io.BytesIO(PNG),
            file_name="v.png",
            content_type="image/png",
            actor=None,
        ).pk
        == event.pk
    )
    assert event.payload["content_base64"] == base64.b64encode(PNG).decode()
    lose_the_answer(sandbox_clean, f"{PRICEBOOK}/materials/{raw['id']}")
    event = outbox_deliver(event_id=event.pk)
    assert event.status == "failed"
    event = deliver_again(event)
    assert event.status == "sent", event.last_error
    assert event.response["already_done"] is True
    digest = hashlib.sha256(PNG).hexdigest()
    assert applied(sandbox_clean, f"pricebook-images/{digest}") == 1  # uploaded once
    assets = st.get(f"materials/{raw['id']}")["assets"]
    ours = [a for a in assets if (a.get("alias") or "").startswith(f"fb-{digest[:16]}-")]
    assert len(ours) == 1 and ours[0]["type"] == "Image"
    stored = requests.get(
        f"{st.root}/images", params={"path": ours[0]["url"]}, headers=st.headers, timeout=10
    )
    assert stored.content == PNG


# --- the portal services' own checks (nothing is queued when they refuse) -----------------------


@pytest.mark.parametrize(
    ("kind", "changes", "field_name"),
    [
        ("material", {"price": "-1.00"}, "price"),
        ("material", {"price": "1.234"}, "price"),
        ("material", {"price": "lots"}, "price"),
        ("material", {"cost": True}, "cost"),
        ("service", {"cost": "3.00"}, "cost"),  # services have no cost in ServiceTitan
        ("material", {"code": "NEW"}, "code"),
        ("material", {"displayName": "x" * 256}, "displayName"),
        ("material", {"active": "no"}, "active"),
    ],
)
def test_bad_changes_are_refused_by_field(st_integration, kind, changes, field_name):
    item = PricebookItem.objects.create(
        integration=st_integration, external_id=f"{kind}:1", kind=kind
    )
    with pytest.raises(ValidationError) as caught:
        pricebook_item_update(item=item, changes=changes, actor=None)
    assert list(caught.value.message_dict) == [field_name]
    assert not OutboxEvent.objects.exists() and not AuditLog.objects.exists()


def test_a_provider_without_pricebook_writes_is_refused(sm8_integration):
    item = PricebookItem.objects.create(integration=sm8_integration, external_id="m1")
    with pytest.raises(ValidationError) as caught:
        pricebook_item_update(item=item, changes={"price": "1.00"}, actor=None)
    assert "item" in caught.value.message_dict
    assert not OutboxEvent.objects.exists()


@pytest.mark.parametrize(
    ("content", "content_type", "fragment"),
    [
        (b"%PDF-1.4 not an image", "application/pdf", "Upload one of"),
        (b"GIF89a but called png", "image/png", "not the image type"),
        (b"", "image/png", "empty"),
        (b"\x89PNG\r\n\x1a\n" + b"0" * (2 * 1024 * 1024), "image/png", "larger than 2 MB"),
    ],
)
def test_bad_images_are_refused(st_integration, content, content_type, fragment):
    item = PricebookItem.objects.create(integration=st_integration, external_id="material:1")
    with pytest.raises(ValidationError) as caught:
        pricebook_item_image(
            item=item,
            image=io.BytesIO(content),
            file_name="x",
            content_type=content_type,
            actor=None,
        )
    assert fragment in " ".join(caught.value.message_dict["image"])
    assert not OutboxEvent.objects.exists()


def test_the_admin_form_queues_a_change_for_team_admins_only(st_integration, client):
    item = PricebookItem.objects.create(
        integration=st_integration, external_id="material:7", raw={}
    )
    push = reverse("admin:portal_pricebookitem_push", args=[item.pk])
    dispatcher = factories.UserFactory(is_staff=True)
    factories.TeamMembershipFactory(
        user=dispatcher, company=st_integration.company, role="dispatcher"
    )
    client.force_login(dispatcher)
    page = reverse("admin:portal_pricebookitem_change", args=[item.pk])
    viewed = client.get(page)
    assert viewed.status_code == 200 and 'id="pricebook-push"' not in viewed.content.decode()
    assert client.post(push, {"price": "10.00"}).status_code == 403
    team_admin = factories.UserFactory(is_staff=True)
    factories.TeamMembershipFactory(user=team_admin, company=st_integration.company)
    client.force_login(team_admin)
    assert 'id="pricebook-push"' in client.get(page).content.decode()
    refused = client.post(push, {"price": "-3"})
    assert refused.status_code == 200 and not OutboxEvent.objects.exists()
    response = client.post(push, {"price": "10.00", "description": "Brass", "active": ""})
    assert response.status_code == 302
    (event,) = OutboxEvent.objects.all()
    assert event.action == "pricebook.update"
    assert event.payload == {
        "item_external_id": "material:7",
        "kind": "material",
        "changes": {"price": "10.00", "description": "Brass"},
    }


def test_a_synced_item_changed_here_comes_back_changed_with_the_next_sync(
    st_integration, sandbox_clean
):
    """The whole loop: the pricebook sync writes the row, the change goes out through the
    outbox under the row's own external id, and the next sync reads the new price back."""
    from sync.engine import sync_entity

    run = sync_entity(integration_id=st_integration.pk, entity="pricebook_materials", mode="full")
    assert run.status == "success", run.status
    item = PricebookItem.objects.filter(integration=st_integration, kind="material").first()
    assert item is not None and item.external_id.startswith("material:")
    new_price = item.unit_price + 7
    event = pricebook_item_update(item=item, changes={"price": str(new_price)}, actor=None)
    event = outbox_deliver(event_id=event.pk)
    assert event.status == "sent", event.last_error
    item.refresh_from_db()
    assert item.unit_price == new_price - 7  # the row is the provider's: unchanged until read
    again = sync_entity(
        integration_id=st_integration.pk, entity="pricebook_materials", mode="incremental"
    )
    assert again.status == "success", again.status
    item.refresh_from_db()
    assert item.unit_price == new_price
