"""ServiceTitan pricebook writes: PATCH materials, services and equipment; image upload.

Written from the official spec (``shared/provider-specs/servicetitan/tenant-pricebook-v2.yml``,
"the spec") and ServiceTitan's developer portal; nothing here may import the ServiceTitan
client (STYLE.md §1). ``ServiceTitanApi`` (``servicetitan.py``) mixes
``ServiceTitanPricebookWrites`` in.

Routes (sandbox root + ``/servicetitan``):

- ``PATCH /pricebook/v2/tenant/{t}/{materials|services|equipment}/{id}``  body
  ``Pricebook.V2.{Material,Service,Equipment}UpdateRequest`` (every field optional,
  ``additionalProperties: false``) [spec: Materials_Update, Services_Update,
  Equipment_Update]. 200 with the whole item (``…Response``); the fields sent replace the
  stored ones (``assets`` is an array: the list sent replaces the item's list). 404 for an
  unknown item.
- ``POST /pricebook/v2/tenant/{t}/images``  ``multipart/form-data`` with the file in part
  ``file``; 200 with the stored image's path as a JSON string. ``GET …/images?path=…`` answers
  the file. Images_Post/Images_Get ("Upload an image to temporary storage") are not in the 2022
  spec kept here: they come from ServiceTitan's current Pricebook spec [mem]; the path format
  (``Images/Pricebook/<uuid>.<ext>``) is the sandbox's own [mem: undocumented].

Refusals are ``ApiErrorResponse`` problem details (the spec's 400) with ``errors`` per field,
as ASP.NET model validation names them (the JSON property name). Rules the spec does not
spell out, chosen to catch a client that sends what it should not [mem: the real API's
wording is unknown]:

- a field the kind's Update schema lacks, or a value of the wrong JSON type, is refused;
- prices (``price``, ``memberPrice``, ``addOnPrice``, ``addOnMemberPrice``), ``cost`` and
  ``hours`` must be zero or more; ``displayName`` at most 255 characters;
- an asset needs ``type`` (SkuAssetType) and ``url``; an ``Image`` asset's url must be a path
  this tenant's upload answered, or an http(s) URL;
- an upload must be an image (JPEG, PNG, GIF or WebP, by content type) of at most
  ``MAX_IMAGE_BYTES``.

Stats: a PATCH that was applied counts in ``writes_applied`` under
``pricebook/{resource}/{id}``; an upload under ``pricebook-images/{sha256 of the bytes}``, so
"uploaded once" is that key's count being 1.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from integrations.sandbox.app import Endpoint, json_response, json_text_response
from integrations.sandbox.store import Collection, Condition, now_us

if TYPE_CHECKING:
    from integrations.sandbox.servicetitan import ServiceTitanApi

PROVIDER = "servicetitan"
API_PREFIX = "/servicetitan"
IMAGES_OBJECT = "pricebook-images"
MAX_IMAGE_BYTES = 5 * 1024 * 1024
IMAGE_TYPES = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
}
ASSET_TYPES = ("Other", "Image", "Video", "Attachment", "VideoFile")  # Pricebook.V2.SkuAssetType
_INT64_MAX = 2**63 - 1

NUM, STR, BOOL, OBJ, ARR = "number", "string", "boolean", "object", "array"
_SHARED = {
    "code": STR,
    "displayName": STR,
    "description": STR,
    "price": NUM,
    "memberPrice": NUM,
    "addOnPrice": NUM,
    "addOnMemberPrice": NUM,
    "active": BOOL,
    "taxable": BOOL,
    "account": STR,
    "hours": NUM,
    "paysCommission": BOOL,
    "commissionBonus": NUM,
    "assets": ARR,
    "categories": ARR,
    "externalData": OBJ,
}
# The properties of each Update request schema [spec: components.schemas].
UPDATE_FIELDS: dict[str, dict[str, str]] = {
    "materials": {
        **_SHARED,
        "cost": NUM,
        "deductAsJobCost": BOOL,
        "unitOfMeasure": STR,
        "isInventory": BOOL,
        "costOfSaleAccount": STR,
        "assetAccount": STR,
        "primaryVendor": OBJ,
        "otherVendors": ARR,
    },
    "services": {
        **_SHARED,
        "warranty": OBJ,
        "isLabor": BOOL,
        "recommendations": ARR,
        "upgrades": ARR,
        "serviceMaterials": ARR,
        "serviceEquipment": ARR,
        "crossSaleGroup": STR,
    },
    "equipment": {
        **_SHARED,
        "manufacturer": STR,
        "model": STR,
        "manufacturerWarranty": OBJ,
        "serviceProviderWarranty": OBJ,
        "recommendations": ARR,
        "upgrades": ARR,
        "equipmentMaterials": ARR,
        "primaryVendor": OBJ,
        "otherVendors": ARR,
        "costOfSaleAccount": STR,
        "assetAccount": STR,
        "crossSaleGroup": STR,
        "cost": NUM,
        "unitOfMeasure": STR,
        "isInventory": BOOL,
    },
}
NON_NEGATIVE = ("price", "memberPrice", "addOnPrice", "addOnMemberPrice", "cost", "hours")
_NAMES = {"materials": "MaterialUpdateRequest", "services": "ServiceUpdateRequest"}
_NULLABLE = {"externalData"}


def _json_type_ok(kind: str, value: Any) -> bool:
    if kind == NUM:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == STR:
        return isinstance(value, str)
    if kind == BOOL:
        return isinstance(value, bool)
    if kind == OBJ:
        return isinstance(value, dict)
    return isinstance(value, list)


def check_update_request(
    resource: str, body: Any, uploaded: Callable[[str], bool]
) -> dict[str, list[str]]:
    """ASP.NET-style {field: [messages]} for a pricebook Update request; {} when valid."""
    if not isinstance(body, dict):
        return {"request": ["The request body must be a JSON object."]}
    fields = UPDATE_FIELDS[resource]
    schema = _NAMES.get(resource, "EquipmentUpdateRequest")
    errors: dict[str, list[str]] = {}
    for name, value in body.items():
        kind = fields.get(name)
        if kind is None:
            errors[name] = [f"Could not find member '{name}' on object of type '{schema}'."]
        elif value is None and name in _NULLABLE:
            continue
        elif not _json_type_ok(kind, value):
            errors[name] = [f"The JSON value could not be converted to the type of {name}."]
        elif name in NON_NEGATIVE and value < 0:
            errors[name] = [f"The field {name} must be greater than or equal to 0."]
        elif name == "displayName" and len(value) > 255:
            errors[name] = ["The field displayName must be at most 255 characters."]
        elif name == "assets":
            for index, asset in enumerate(value):
                errors.update(_check_asset(index, asset, uploaded))
    return errors


def _check_asset(index: int, asset: Any, uploaded: Callable[[str], bool]) -> dict[str, list[str]]:
    where = f"assets[{index}]"
    if not isinstance(asset, dict):
        return {where: ["The asset must be a JSON object."]}
    errors: dict[str, list[str]] = {}
    for name in sorted(set(asset) - {"type", "alias", "url"}):
        errors[f"{where}.{name}"] = [
            f"Could not find member '{name}' on object of type 'SkuAssetRequest'."
        ]
    if asset.get("type") not in ASSET_TYPES:
        errors[f"{where}.type"] = ["The type field is required and must be a SkuAssetType."]
    url = asset.get("url")
    if not isinstance(url, str) or not url:
        errors[f"{where}.url"] = ["The url field is required."]
    elif (
        asset.get("type") == "Image"
        and not url.startswith(("https://", "http://"))
        and not uploaded(url)
    ):
        errors[f"{where}.url"] = [f"Image '{url}' was not uploaded."]
    if asset.get("alias") is not None and not isinstance(asset["alias"], str):
        errors[f"{where}.alias"] = ["The JSON value could not be converted to System.String."]
    return errors


def _stored_asset(asset: dict[str, Any]) -> dict[str, Any]:
    """SkuAssetRequest -> SkuAssetResponse (``fileName`` = the alias, as the portal shows)."""
    return {
        "alias": asset.get("alias"),
        "fileName": asset.get("alias"),
        "type": asset["type"],
        "url": asset["url"],
    }


class ServiceTitanPricebookWrites:
    """Pricebook write handlers; see the module docstring. Mixed into ``ServiceTitanApi``."""

    def pricebook_write_endpoints(self: ServiceTitanApi) -> list[tuple[Rule, Endpoint]]:
        p = PROVIDER
        base = f"{API_PREFIX}/pricebook/v2/tenant/<tenant>"
        template = f"{API_PREFIX}/pricebook/v2/tenant/{{tenant}}"
        routes = [
            (
                Rule(f"{base}/{resource}/<rid>", methods=["PATCH"], endpoint=f"st.pb_{resource}"),
                Endpoint(
                    p,
                    "api",
                    self._patch_handler(resource),
                    f"{template}/{resource}/{{id}}",
                ),
            )
            for resource in UPDATE_FIELDS
        ]
        return [
            *routes,
            (
                Rule(f"{base}/images", methods=["POST"], endpoint="st.pb_image_upload"),
                Endpoint(p, "api", self.upload_pricebook_image, f"{template}/images"),
            ),
            (
                Rule(f"{base}/images", methods=["GET"], endpoint="st.pb_image_get"),
                Endpoint(p, "api", self.get_pricebook_image, f"{template}/images"),
            ),
        ]

    def _patch_handler(self: ServiceTitanApi, resource: str):
        def handler(request: Request, tenant: str, rid: str) -> Response:
            return self.patch_pricebook_item(request, tenant, resource, rid)

        return handler

    def _uploaded_image(self: ServiceTitanApi, tenant: str, path: str) -> dict[str, Any] | None:
        images = Collection(PROVIDER, tenant, IMAGES_OBJECT)
        rows = self.store.list_offset(
            images, conditions=[Condition("data.path", "eq", path)], limit=1
        )
        return rows[0].data if rows else None

    def patch_pricebook_item(
        self: ServiceTitanApi, request: Request, tenant: str, resource: str, rid: str
    ) -> Response:
        begun = self._begin(request, "pricebook", tenant, resource)
        if isinstance(begun, Response):
            return begun
        if not rid.isdigit() or int(rid) > _INT64_MAX:
            return self.problem(404)  # {id} is int64 in the spec: no route matches
        body = self._json_object(request)
        if isinstance(body, Response):
            return body
        errors = check_update_request(
            resource, body, lambda path: self._uploaded_image(tenant, path) is not None
        )
        if errors:
            return self.problem(400, errors=errors)
        collection = Collection(PROVIDER, tenant, resource)
        with self._write_lock:
            record = self.store.get(collection, int(rid))
            if record is None:
                return self.problem(404, f"{resource.rstrip('s').capitalize()} not found")
            data = record.data
            active = body.pop("active", bool(record.active))
            if "assets" in body:
                body["assets"] = [_stored_asset(a) for a in body["assets"]]
            data.update(body)
            record = self.store.upsert(collection, int(rid), data, active=bool(active))
            self.app.stats.write_applied(PROVIDER, f"pricebook/{resource}/{rid}")
        return json_text_response(self.render_record(collection, record))

    def upload_pricebook_image(self: ServiceTitanApi, request: Request, tenant: str) -> Response:
        begun = self._begin(request, "pricebook", tenant, "materials")
        if isinstance(begun, Response):
            return begun
        if request.mimetype != "multipart/form-data":
            return self.problem(415, "Unsupported Media Type")
        upload = request.files.get("file")
        if upload is None:
            return self.problem(400, errors={"file": ["The file field is required."]})
        content = upload.read(MAX_IMAGE_BYTES + 1)
        content_type = (upload.mimetype or "").lower()
        if content_type not in IMAGE_TYPES:
            return self.problem(
                400, errors={"file": ["Only JPEG, PNG, GIF and WebP images can be uploaded."]}
            )
        if not content or len(content) > MAX_IMAGE_BYTES:
            return self.problem(
                400, errors={"file": [f"The image must hold 1 to {MAX_IMAGE_BYTES} bytes."]}
            )
        digest = hashlib.sha256(content).hexdigest()
        path = f"Images/Pricebook/{uuid.uuid4().hex}{IMAGE_TYPES[content_type]}"
        images = Collection(PROVIDER, tenant, IMAGES_OBJECT)
        data = {
            "path": path,
            "contentType": content_type,
            "fileName": upload.filename or "",
            "sha256": digest,
            "content": base64.b64encode(content).decode(),
        }
        self.store.upsert(images, self.new_record_id(images), data, modified_us=now_us())
        self.app.stats.write_applied(PROVIDER, f"{IMAGES_OBJECT}/{digest}")
        return json_response(path, 200)

    def get_pricebook_image(self: ServiceTitanApi, request: Request, tenant: str) -> Response:
        begun = self._begin(request, "pricebook", tenant, "materials")
        if isinstance(begun, Response):
            return begun
        data = self._uploaded_image(tenant, request.args.get("path") or "")
        if data is None:
            return self.problem(404, "Image not found")
        return Response(base64.b64decode(data["content"]), 200, content_type=data["contentType"])
