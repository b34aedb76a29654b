"""ServiceTitan pricebook writes for the outbox: item changes and item images.

Endpoints (spec: servicetitan/tenant-pricebook-v2.yml, April 2022):
- `GET /pricebook/v2/tenant/{t}/{materials|services|equipment}/{id}` (Materials_Get,
  Services_Get, Equipment_Get): the item as it stands, read before any write;
- `PATCH …/{materials|services|equipment}/{id}` (Materials_Update, Services_Update,
  Equipment_Update) with `Pricebook.V2.{Material,Service,Equipment}UpdateRequest`: every field
  optional, `additionalProperties: false`; only the fields sent change. Prices are
  `number/decimal`. The 200 answer is the item (`…Response`). A refusal is a 400
  `ApiErrorResponse` whose `errors` name the fields (client.py turns it into field_errors);
- images: `POST /pricebook/v2/tenant/{t}/images` (Images_Post, "Upload an image to temporary
  storage"), `multipart/form-data` with the file in part `file`, answers the stored image's
  path as a JSON string.
  # SPEC GAP: the endpoint is NOT in the 2022 spec kept in shared/provider-specs
  (tenant-pricebook-v2.yml has no `/images` path). Sources that exist: third-party only
  [3p: TypeScript clients generated from ServiceTitan's current portal spec expose operations
  `Images_Get`/`Images_Post` on `/pricebook/v2/tenant/{tenant}/images`; an open-source
  ServiceTitan MCP server's `pricebook_images_post` tool documents it as "Upload an image to
  temporary storage. Mirrors Images_Post"; other clients read images back with
  `GET …/images?path=<asset url>` and upload with a multipart part named `file`]. The
  multipart shape and the string answer are from those clients, not a spec (the code also
  accepts an object answer with `path`/`url`). The path is then attached to the item as an asset
  (`assets: [Pricebook.V2.SkuAssetRequest {type: "Image", url, alias}]`, in the 2022 spec).
  `assets` is an array: a PATCH replaces the whole list, so the item's current assets are sent
  back with the new one.

Outbox actions:
- `pricebook.update` `{"item_external_id", "kind": material|service|equipment,
  "changes": {field: value}}`; the fields are an allow-list of what the kind's Update request
  schema accepts (CHANGEABLE): a field outside it is refused before any call.
- `pricebook.image` `{"item_external_id", "kind", "file_name", "content_type",
  "content_base64", "sha256"}`.
`item_external_id` is the ServiceTitan id, bare ("123") or with its kind ("material:123").

Exactly once: the item is read first. An update sends only the fields whose value differs
(compared as Decimal for numbers) and skips the PATCH when none does (the PATCH is not resent
by the HTTP layer: a lost answer fails the attempt, and the next one reads first). An image
carries its content hash in the asset's alias (`fb-<sha256[:16]>-<file name>`): an item that
already has an asset with that marker is not given the image again, and nothing is uploaded.
(An upload whose PATCH then fails leaves an unattached file in ServiceTitan's *temporary*
storage; the re-delivery uploads again and attaches that one.) Both read the item back (the
PATCH answer) and check the change is there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from integrations.exceptions import (
    ProviderError,
    ProviderMalformedResponseError,
    ProviderValidationError,
)

if TYPE_CHECKING:
    from integrations.providers.servicetitan.provider import ServiceTitanProvider

RESOURCE = {"material": "materials", "service": "services", "equipment": "equipment"}
DECIMAL, TEXT, BOOL = "decimal", "text", "bool"
_COMMON = {
    "displayName": TEXT,
    "description": TEXT,
    "price": DECIMAL,
    "memberPrice": DECIMAL,
    "addOnPrice": DECIMAL,
    "addOnMemberPrice": DECIMAL,
    "hours": DECIMAL,
    "active": BOOL,
    "taxable": BOOL,
}
# kind -> field -> type: fields of the kind's Update request schema that we let people change
# (services have no `cost` nor `unitOfMeasure` in ServiceUpdateRequest).
CHANGEABLE: dict[str, dict[str, str]] = {
    "material": {**_COMMON, "cost": DECIMAL, "unitOfMeasure": TEXT},
    "service": dict(_COMMON),
    "equipment": {**_COMMON, "cost": DECIMAL, "unitOfMeasure": TEXT},
}
IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
ASSET_TYPE_IMAGE = "Image"  # Pricebook.V2.SkuAssetType
IMAGES_PATH = "images"


def image_marker(sha256: str) -> str:
    return f"fb-{sha256[:16]}-"


def _refuse(provider: ServiceTitanProvider, message: str, field: str = "__all__"):
    return ProviderValidationError(
        f"servicetitan: {message}", provider=provider.key, field_errors={field: [message]}
    )


def _item_path(provider: ServiceTitanProvider, payload: dict) -> tuple[str, str]:
    """(kind, `pricebook/v2/tenant/{t}/{resource}/{id}`) from the payload."""
    kind = payload.get("kind")
    if kind not in RESOURCE:
        raise _refuse(provider, f"kind must be one of {', '.join(RESOURCE)}", "kind")
    item_id = str(payload.get("item_external_id") or "")
    prefix, _, bare = item_id.rpartition(":")
    if prefix and prefix != kind:
        raise _refuse(provider, f"item {item_id!r} is not a {kind}", "item_external_id")
    if not bare.isdigit():
        raise _refuse(provider, "item_external_id must be a ServiceTitan id", "item_external_id")
    return kind, provider.path("pricebook", f"{RESOURCE[kind]}/{bare}")


def _to_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def clean_changes(provider: ServiceTitanProvider, kind: str, changes: Any) -> dict[str, Any]:
    """The changes as the PATCH body sends them; every bad field is named."""
    if not isinstance(changes, dict) or not changes:
        raise _refuse(provider, "changes must name at least one field", "changes")
    allowed = CHANGEABLE[kind]
    errors: dict[str, list[str]] = {}
    body: dict[str, Any] = {}
    for field, value in changes.items():
        kind_of = allowed.get(field)
        if kind_of is None:
            errors[field] = [f"{field!r} cannot be changed on a ServiceTitan {kind}"]
        elif kind_of == DECIMAL:
            number = _to_decimal(value)
            if number is None or not number.is_finite() or number < 0:
                errors[field] = ["must be a number, zero or more"]
            else:
                # JSON has no decimal type; prices have two places, which a double keeps.
                body[field] = int(number) if number == number.to_integral() else float(number)
        elif kind_of == BOOL:
            if not isinstance(value, bool):
                errors[field] = ["must be true or false"]
            else:
                body[field] = value
        elif not isinstance(value, str):
            errors[field] = ["must be text"]
        else:
            body[field] = value
    if errors:
        raise ProviderValidationError(
            f"servicetitan: the {kind} change was refused ({', '.join(sorted(errors))})",
            provider=provider.key,
            field_errors=errors,
        )
    return body


def _same(kind_of: str, current: Any, wanted: Any) -> bool:
    if kind_of == DECIMAL:
        return _to_decimal(current) == _to_decimal(wanted)
    if kind_of == TEXT:
        return (current or "") == wanted
    return current is wanted


def _read(provider: ServiceTitanProvider, path: str) -> dict:
    return provider.get_client().get_record(path)


def _patch(provider: ServiceTitanProvider, path: str, body: dict) -> dict:
    # Not resent blindly by the HTTP layer (PATCH is not idempotent there): a PATCH whose
    # answer was lost fails the delivery, and the re-delivery reads the item and finds the
    # values in place, so the item is written once.
    answer = provider.get_client().request("PATCH", path, json_body=body).json()
    if not isinstance(answer, dict):
        raise ProviderMalformedResponseError(
            f"servicetitan: PATCH {path} did not return the item", provider=provider.key
        )
    return answer


def pricebook_update(
    provider: ServiceTitanProvider, payload: dict, *, idempotency_key: str
) -> dict:
    kind, path = _item_path(provider, payload)
    body = clean_changes(provider, kind, payload.get("changes"))
    types = CHANGEABLE[kind]
    item = _read(provider, path)
    pending = {f: v for f, v in body.items() if not _same(types[f], item.get(f), v)}
    if pending:
        item = _patch(provider, path, pending)
        off = sorted(f for f, v in pending.items() if not _same(types[f], item.get(f), v))
        if off:
            raise ProviderError(
                f"servicetitan: {kind} {item.get('id')} reads back without the change to "
                f"{', '.join(off)}",
                provider=provider.key,
            )
    return {
        "item": str(item.get("id")),
        "kind": kind,
        "changed": sorted(pending),
        "already_done": not pending,
    }


def _image_bytes(provider: ServiceTitanProvider, payload: dict) -> tuple[bytes, str]:
    content_type = str(payload.get("content_type") or "")
    if content_type not in IMAGE_TYPES:
        raise _refuse(provider, f"content_type must be one of {sorted(IMAGE_TYPES)}", "image")
    try:
        content = base64.b64decode(str(payload.get("content_base64") or ""), validate=True)
    except (binascii.Error, ValueError):
        raise _refuse(provider, "the image is not valid base64", "image") from None
    digest = hashlib.sha256(content).hexdigest()
    if not content or digest != payload.get("sha256"):
        raise _refuse(provider, "the image does not match its sha256", "image")
    return content, digest


def _asset_request(asset: dict) -> dict:
    """A SkuAssetResponse as a SkuAssetRequest (type, url, alias; no fileName)."""
    request = {"type": asset.get("type") or "Other", "url": asset.get("url") or ""}
    if asset.get("alias") is not None:
        request["alias"] = asset["alias"]
    return request


def _upload(provider: ServiceTitanProvider, content: bytes, file_name: str, content_type: str):
    boundary = uuid.uuid4().hex
    name = file_name.replace('"', "").replace("\r", "").replace("\n", "") or "image"
    body = (
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = provider.get_client().request(
        "POST",
        provider.path("pricebook", IMAGES_PATH),
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    answer = response.json()
    if isinstance(answer, dict):  # tolerate an object answer, as the doc is not in our spec
        answer = answer.get("path") or answer.get("url")
    if not isinstance(answer, str) or not answer.strip():
        raise ProviderMalformedResponseError(
            "servicetitan: the image upload did not answer the image's path",
            provider=provider.key,
        )
    return answer.strip()


def pricebook_image(provider: ServiceTitanProvider, payload: dict, *, idempotency_key: str) -> dict:
    kind, path = _item_path(provider, payload)
    content, digest = _image_bytes(provider, payload)
    marker = image_marker(digest)
    item = _read(provider, path)
    assets = [a for a in item.get("assets") or () if isinstance(a, dict)]
    attached = next((a for a in assets if str(a.get("alias") or "").startswith(marker)), None)
    if attached is not None:
        return {"item": str(item.get("id")), "url": attached.get("url"), "already_done": True}
    file_name = str(payload.get("file_name") or "image")[:200]
    url = _upload(provider, content, file_name, str(payload["content_type"]))
    new = {"type": ASSET_TYPE_IMAGE, "url": url, "alias": f"{marker}{file_name}"}
    item = _patch(provider, path, {"assets": [*map(_asset_request, assets), new]})
    if not any(str(a.get("alias") or "").startswith(marker) for a in item.get("assets") or ()):
        raise ProviderError(
            f"servicetitan: {kind} {item.get('id')} reads back without the image",
            provider=provider.key,
        )
    return {"item": str(item.get("id")), "url": url, "already_done": False}
