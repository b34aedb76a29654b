"""Pricebook changes pushed back to the provider (issue #5): an item's prices, texts and flags,
and an image attached to it.

Both services validate, then write an AuditLog entry and one outbox event in one transaction;
the relay delivers the event (`pricebook.update` / `pricebook.image`, see
integrations/providers/servicetitan/writes_pricebook.py). The local PricebookItem row is not
changed: the provider is the pricebook's source of truth, so a change it refuses must not show
as done; the next sync brings the accepted value back. The event's state (and the provider's
field errors, `OutboxEvent.field_errors`) is what the admin shows.

Which fields a provider accepts, by item kind, is the provider's `pricebook_changeable`
({kind: {field: "decimal" | "text" | "bool"}}, the provider's own field names, which are also
the names its field errors use); a provider without it (or without
Capability.WRITE_PRICEBOOK) cannot take pricebook changes.

Images: the bytes travel base64-encoded in the outbox payload, with their SHA-256. Chosen over
a stored file because the event is then self-contained and written in the same transaction
as the audit entry (no file left behind by a rolled-back transaction, no storage shared
between the web process and the workers, nothing to clean up when the event is sent); the
cost is payload size, so images are capped at IMAGE_MAX_BYTES (2 MB, 2.7 MB as base64) and the
outbox admin never renders the bytes.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.db import transaction

from integrations.base import Capability
from integrations.services import integration_write_refusal
from portal.models import AuditLog, PricebookItem, User
from sync.models import OutboxEvent
from sync.outbox import outbox_event_enqueue

UPDATE_ACTION = "pricebook.update"
IMAGE_ACTION = "pricebook.image"
AGGREGATE = "portal.PricebookItem"
IMAGE_MAX_BYTES = 2 * 1024 * 1024
TEXT_MAX = {"displayName": 255, "unitOfMeasure": 40}
TEXT_DEFAULT_MAX = 4000
# Money: MONEY's 14 digits, 2 places; other decimals (hours) up to 4 places.
DECIMAL_PLACES = {"hours": 4}
DECIMAL_MAX = Decimal("999999999999.99")


def _provider_fields(item: PricebookItem) -> tuple[Any, dict[str, str]]:
    """(provider class, {field: type}) for the item's kind; ValidationError when the item's
    provider cannot take pricebook changes."""
    integration = item.integration
    provider, refusal = integration_write_refusal(
        integration, Capability.WRITE_PRICEBOOK, "changing pricebook items"
    )
    if refusal:
        raise ValidationError({"item": [refusal]})
    if item.remote_deleted_at is not None:
        raise ValidationError({"item": ["The item was deleted in the provider."]})
    fields = (getattr(provider, "pricebook_changeable", None) or {}).get(item.kind)
    if not fields:
        raise ValidationError(
            {
                "item": [
                    f"{provider.name} {item.get_kind_display().lower()} items cannot be changed."
                ]
            }
        )
    return provider, fields


def _clean_value(field: str, kind: str, value: Any) -> tuple[Any, str | None]:
    """(JSON-ready value, error message or None)."""
    if kind == "decimal":
        if isinstance(value, bool) or value is None or value == "":
            return None, "Enter a number."
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            return None, "Enter a number."
        if not number.is_finite():
            return None, "Enter a number."
        if number < 0:
            return None, "Must be zero or more."
        if number > DECIMAL_MAX:
            return None, f"Must be at most {DECIMAL_MAX}."
        places = DECIMAL_PLACES.get(field, 2)
        if number != number.quantize(Decimal(1).scaleb(-places)):
            return None, f"At most {places} decimal places."
        return str(number), None
    if kind == "bool":
        if not isinstance(value, bool):
            return None, "Must be true or false."
        return value, None
    if not isinstance(value, str):
        return None, "Must be text."
    value = value.strip()
    limit = TEXT_MAX.get(field, TEXT_DEFAULT_MAX)
    if len(value) > limit:
        return None, f"At most {limit} characters."
    if field == "displayName" and not value:
        return None, "A name is required."
    return value, None


def pricebook_changes_clean(*, item: PricebookItem, changes: dict) -> dict[str, Any]:
    """The changes with JSON-ready values (decimals as strings); ValidationError naming each
    bad field."""
    _, fields = _provider_fields(item)
    if not isinstance(changes, dict) or not changes:
        raise ValidationError({"changes": ["Change at least one field."]})
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    for field, value in changes.items():
        kind = fields.get(field)
        if kind is None:
            errors[str(field)] = [
                f"Cannot be changed on a {item.get_kind_display().lower()}; allowed: "
                f"{', '.join(sorted(fields))}."
            ]
            continue
        clean, error = _clean_value(field, kind, value)
        if error:
            errors[field] = [error]
        else:
            cleaned[field] = clean
    if errors:
        raise ValidationError(errors)
    return cleaned


def _item_id(item: PricebookItem) -> str:
    return item.external_id


def pricebook_item_update(
    *, item: PricebookItem, changes: dict, actor: User | None, ip_address: str | None = None
) -> OutboxEvent:
    """Queue a change of the item at its provider; returns the outbox event."""
    cleaned = pricebook_changes_clean(item=item, changes=changes)
    raw = item.raw or {}
    with transaction.atomic():
        event = outbox_event_enqueue(
            integration=item.integration,
            action=UPDATE_ACTION,
            aggregate_type=AGGREGATE,
            aggregate_id=str(item.pk),
            payload={"item_external_id": _item_id(item), "kind": item.kind, "changes": cleaned},
            idempotency_key=f"pricebook:{item.pk}:{secrets.token_hex(8)}",
        )
        AuditLog.objects.create(
            company_id=item.integration.company_id,
            actor=actor,
            action=UPDATE_ACTION,
            target_type=PricebookItem._meta.label,
            target_id=str(item.pk),
            target_repr=str(item)[:255],
            before={f: raw.get(f) for f in cleaned},
            after={**cleaned, "outbox_event": event.pk},
            ip_address=ip_address,
        )
    return event


def pricebook_item_image(
    *,
    item: PricebookItem,
    image: IO[bytes],
    file_name: str,
    content_type: str,
    actor: User | None,
    ip_address: str | None = None,
) -> OutboxEvent:
    """Queue an image to attach to the item at its provider. The same image queued twice for
    one item is one event (its key is the content hash)."""
    provider, _ = _provider_fields(item)
    types = getattr(provider, "pricebook_image_types", frozenset())
    if hasattr(image, "seek"):
        image.seek(0)
    content = image.read(IMAGE_MAX_BYTES + 1)
    errors: list[str] = []
    if not types:
        errors.append(f"{provider.name} pricebook items cannot take images.")
    elif content_type not in types:
        errors.append(f"Upload one of: {', '.join(sorted(types))} (not {content_type or '?'}).")
    if not content:
        errors.append("The file is empty.")
    elif len(content) > IMAGE_MAX_BYTES:
        errors.append(f"The image is larger than {IMAGE_MAX_BYTES // (1024 * 1024)} MB.")
    elif not _looks_like(content_type, content):
        errors.append("The file's content is not the image type it claims.")
    if errors:
        raise ValidationError({"image": errors})
    digest = hashlib.sha256(content).hexdigest()
    name = (file_name or "image").replace("/", "_").replace("\\", "_")[-120:]
    with transaction.atomic():
        event = outbox_event_enqueue(
            integration=item.integration,
            action=IMAGE_ACTION,
            aggregate_type=AGGREGATE,
            aggregate_id=str(item.pk),
            payload={
                "item_external_id": _item_id(item),
                "kind": item.kind,
                "file_name": name,
                "content_type": content_type,
                "sha256": digest,
                "content_base64": base64.b64encode(content).decode(),
            },
            idempotency_key=f"pricebook-image:{item.pk}:{digest}",
        )
        AuditLog.objects.create(
            company_id=item.integration.company_id,
            actor=actor,
            action=IMAGE_ACTION,
            target_type=PricebookItem._meta.label,
            target_id=str(item.pk),
            target_repr=str(item)[:255],
            after={
                "file_name": name,
                "sha256": digest,
                "bytes": len(content),
                "outbox_event": event.pk,
            },
            ip_address=ip_address,
        )
    return event


# Magic numbers of the accepted image types (a renamed file is refused here, not by the
# provider after a round trip).
_MAGIC = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/gif": (b"GIF87a", b"GIF89a"),
}


def _looks_like(content_type: str, content: bytes) -> bool:
    if content_type == "image/webp":
        return content[:4] == b"RIFF" and content[8:12] == b"WEBP"
    return content.startswith(_MAGIC.get(content_type, (b"",)))
