"""ServiceM8 provider.

- API docs: https://developer.servicem8.com/ ; OpenAPI: shared/provider-specs/servicem8.
- Auth: `X-Api-Key` (a private API key), or OAuth2 authorization code with refresh
  (authorize https://api.servicem8.com/oauth/authorize, token …/oauth/access_token, per the
  spec's securitySchemes). The OAuth app's client id/secret come from the credentials or from
  SERVICEM8_CLIENT_ID / SERVICEM8_CLIENT_SECRET.
- Rate limits: 180 requests a minute and 20,000 a day per add-on per account (spec
  info.description); 429 otherwise.
- Entities, in dependency order: clients (`company`; sites are companies with a
  `parent_company_uuid`), contacts (`companycontact`), staff (`staff`), tax_rates (`taxrate`,
  ReferenceRecord kind "tax_rate", code = the rate in percent; scope `read_tax_rates`),
  job_categories (`category`, kind "job_category"; `read_job_categories`), pricebook_items
  (`material`, PricebookItem kind "material"; `read_inventory`), jobs (`job`; a job that is or
  was a quote also yields its ExternalQuote), job_contacts (`jobcontact`, per-job people;
  `read_job_contacts`), activities (`jobactivity`: scheduled visits, their staff member and
  times; scope `read_schedule`), material_bundles (`jobmaterialbundle`, kind
  "material_bundle", parent = its job; `read_job_materials`), materials (`jobmaterial`, the
  jobs' and quotes' line items), attachments (`attachment`: the metadata of the files on jobs;
  files on other objects are skipped) and notes (`note` on jobs and clients; `read_job_notes`).
  ReferenceRecord ids are "<kind>:<uuid>"; a full run's sweep is limited to its own kind.
- Reads: `GET /{object}.json`, cursor-paged (client.py); one record: `GET /{object}/{uuid}.json`
  (spec: paths `/job.json`, `/job/{uuid}.json`; an attachment is `/dboattachment/{uuid}.json`,
  a note `/dbonote/{uuid}.json`).
  Deleted records stay listed with active 0.
- Files: `GET /attachment/{uuid}.file` streams an attachment's bytes with the same
  credentials (scope `read_attachments`); the portal serves them, never a provider URL.
- Incremental reads: `$filter=edit_date gt '…'` only (no `ge`), in the account's local time;
  we ask from one second before the cursor so the read is inclusive
  (https://developer.servicem8.com/docs/filtering).
- Webhooks: OAuth apps only (issue #4); subscriptions are listed, added and removed through
  the Webhooks API beside the REST one (subscriptions.py).
- Writes (outbox actions): quote.decide and job.create (writes.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from integrations.auth import ApiKeyHeaderAuth, Auth, RefreshTokenAuth
from integrations.base import (
    AccountInfo,
    AttachmentContent,
    Capability,
    ExternalJob,
    ExternalJobContact,
    ExternalNote,
    ExternalPricebookItem,
    ExternalQuote,
    ExternalRecord,
    ExternalReference,
    Provider,
)
from integrations.conf import integration_setting
from integrations.exceptions import (
    ProviderMalformedResponseError,
    ProviderNotFoundError,
    ProviderPermissionError,
    ProviderValidationError,
)
from integrations.providers.servicem8 import mapping, subscriptions, writes
from integrations.providers.servicem8.client import ServiceM8Client
from integrations.ratelimit import RateWindow

# edit_date is local time; without the account's zone we widen the window by the largest
# UTC offset in use, so no change is missed (at the price of re-reading a few records).
UNKNOWN_ZONE_MARGIN = timedelta(hours=14)
# edit_date is local wall-clock time with no offset, so when DST ends the hour before the
# change is written again: an edit in the repeated hour can carry an edit_date up to an hour
# *earlier* than the cursor saved during the first pass of that hour. Re-reading one hour
# (the largest DST shift in use) plus the base's five minutes for late-visible writes keeps
# those edits; the cost is re-reading an hour of changes, usually one page per entity.
# (The one-second step back that makes `gt` inclusive is done in `_since_filter`.)
DST_REPEAT_SECONDS = 3600
LATE_WRITE_SECONDS = 300
UUID_RE = re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$", re.IGNORECASE)


class ServiceM8Provider(Provider):
    key = "servicem8"
    name = "ServiceM8"
    docs_url = "https://developer.servicem8.com/"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.READ_CLIENTS,
            Capability.READ_CONTACTS,
            Capability.READ_STAFF,
            Capability.READ_JOBS,
            Capability.READ_QUOTES,
            Capability.READ_ATTACHMENTS,
            Capability.READ_PRICEBOOK,
            Capability.WRITE_QUOTE_DECISION,
            Capability.WRITE_JOB_CREATE,
        }
    )
    client_class = ServiceM8Client
    rate_limits = (RateWindow(180, 60), RateWindow(20_000, 24 * 60 * 60))
    # ServiceM8 has no separate sandbox host: developer accounts live on the same API.
    environments: ClassVar[dict[str, dict[str, str]]] = {
        env: {
            "api": "https://api.servicem8.com/api_1.0",
            "token": "https://api.servicem8.com/oauth/access_token",
            "authorize": "https://api.servicem8.com/oauth/authorize",
        }
        for env in ("production", "sandbox")
    }
    credential_modes: ClassVar[dict[str, tuple[str, ...]]] = {
        "api_key": ("api_key",),
        "oauth": ("refresh_token",),
    }
    # Asked for by "Connect" (SERVICEM8_OAUTH_SCOPES overrides): reads, quote decisions, notes,
    # and creating jobs from bookings (client, job, job contact, visit).
    oauth_scopes: ClassVar[str] = (
        "vendor read_customers read_customer_contacts read_jobs manage_jobs read_job_materials "
        "manage_job_materials read_staff read_schedule read_job_notes publish_job_notes "
        "read_attachments create_jobs manage_customers manage_job_contacts manage_schedule "
        # The newer reads; each list path's `security` names its scope [spec]: jobcontact
        # read_job_contacts (manage_job_contacts covers it too), category read_job_categories,
        # taxrate read_tax_rates (required by the path although the oauth2 scheme does not
        # declare it), material read_inventory, jobmaterialbundle read_job_materials.
        "read_job_contacts read_job_categories read_tax_rates read_inventory"
    )
    permission_hint = (
        "the OAuth connection lacks a scope this needs (e.g. vendor, read_customers, read_jobs); "
        "reconnect and grant it."
    )

    unapproved_items_modes = writes.UNAPPROVED_ITEMS_MODES

    @classmethod
    def override_urls(cls, root: str) -> dict[str, str]:
        return {
            "api": f"{root}/servicem8/api_1.0",
            "token": f"{root}/servicem8/oauth/access_token",
            "authorize": f"{root}/servicem8/oauth/authorize",
        }

    def build_auth(self) -> Auth:
        credentials = self.context.credentials
        if self.credential_mode(credentials) == "oauth":
            return RefreshTokenAuth(
                provider=self.key,
                store=self.context.token_store,
                token_url=self.urls()["token"],
                client_id=credentials.get("client_id")
                or integration_setting(self.key, "CLIENT_ID", ""),
                client_secret=credentials.get("client_secret")
                or integration_setting(self.key, "CLIENT_SECRET", ""),
            )
        return ApiKeyHeaderAuth(header="X-Api-Key", key=credentials.get("api_key", ""))

    @property
    def account_zone(self) -> ZoneInfo | None:
        name = self.context.config.get("timezone")
        if not name:
            return None
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return None

    def probe(self) -> AccountInfo:
        # vendor.json: the account itself; one small record (OAuth scope `vendor`).
        vendors = self.get_client().get("vendor.json", use_cache=False).json()
        if not isinstance(vendors, list) or not vendors:
            raise ProviderMalformedResponseError(
                "servicem8: vendor.json returned no account", provider=self.key
            )
        vendor = vendors[0]
        return AccountInfo(
            account_id=vendor.get("uuid", ""),
            name=vendor.get("name", ""),
            timezone=vendor.get("timezone_name", ""),
        )

    def _since_filter(self, updated_since: datetime | None) -> list[str]:
        if updated_since is None:
            return []
        zone = self.account_zone
        # `gt` only: step back one second (edit_date's precision) to make it inclusive.
        since = updated_since - timedelta(seconds=1)
        if zone is None:
            zone, since = ZoneInfo("UTC"), since - UNKNOWN_ZONE_MARGIN
        return [f"edit_date gt '{mapping.format_local_datetime(since, zone)}'"]

    cursor_lookback_seconds: ClassVar[int] = DST_REPEAT_SECONDS + LATE_WRITE_SECONDS

    # entity -> ServiceM8 object name, in dependency order.
    objects: ClassVar[dict[str, str]] = {
        "clients": "company",
        "contacts": "companycontact",
        "staff": "staff",
        "tax_rates": "taxrate",
        "job_categories": "category",
        "pricebook_items": "material",
        "jobs": "job",
        "job_contacts": "jobcontact",
        "activities": "jobactivity",
        "material_bundles": "jobmaterialbundle",
        "materials": "jobmaterial",
        "attachments": "attachment",
        "notes": "note",
    }
    entities = tuple(objects)
    # One record's object, where the spec names it differently from the list (spec:
    # `/attachment.json` lists, `/dboattachment/{uuid}.json` reads one; `/note.json` and
    # `/dbonote/{uuid}.json` likewise; there is no `/note/{uuid}.json`).
    record_objects: ClassVar[dict[str, str]] = {
        "attachments": "dboattachment",
        "notes": "dbonote",
    }
    # Entities whose records are ReferenceRecords: entity -> kind (external id "<kind>:<uuid>").
    reference_kinds: ClassVar[dict[str, str]] = {
        entity: mapping.REFERENCE_KINDS[obj]
        for entity, obj in objects.items()
        if obj in mapping.REFERENCE_KINDS
    }
    record_types_by_entity: ClassVar[dict[str, tuple[type[ExternalRecord], ...]]] = {
        # A job that is or was a quote is also an ExternalQuote with the job's uuid.
        "jobs": (ExternalJob, ExternalQuote),
        "job_contacts": (ExternalJobContact,),
        "notes": (ExternalNote,),
        "pricebook_items": (ExternalPricebookItem,),
        **{entity: (ExternalReference,) for entity in reference_kinds},
    }

    def _object(self, entity: str) -> str:
        try:
            return self.objects[entity]
        except KeyError:
            raise ValueError(f"servicem8 does not read {entity}") from None

    def pages(self, entity: str, *, updated_since: datetime | None = None) -> Iterator[list[dict]]:
        return self.get_client().iter_pages(
            self._object(entity),
            filters=self._since_filter(updated_since),
            max_pages=self.max_pages,
        )

    def map_record(self, entity: str, raw: dict) -> ExternalRecord | tuple[ExternalRecord, ...]:
        zone = self.account_zone or ZoneInfo("UTC")
        match entity:
            case "clients":
                return mapping.company_to_client(raw, tz=zone)
            case "contacts":
                return mapping.companycontact_to_contact(raw, tz=zone)
            case "staff":
                return mapping.staff_to_staff(raw, tz=zone)
            case "jobs":
                currency = str(self.context.config.get("currency") or "")
                return mapping.job_to_records(raw, tz=zone, currency=currency)
            case "activities":
                # An activity that is not a scheduled visit (recorded time) maps to nothing.
                activity = mapping.jobactivity_to_activity(raw, tz=zone)
                return () if activity is None else activity
            case "materials":
                return mapping.jobmaterial_to_material(raw, tz=zone)
            case "attachments":
                # A file on another object (a client, a staff member) maps to nothing.
                attachment = mapping.attachment_to_attachment(raw, tz=zone)
                return () if attachment is None else attachment
            case "job_contacts":
                return mapping.jobcontact_to_job_contact(raw, tz=zone)
            case "notes":
                # A note on another object (a staff member, an asset) maps to nothing.
                note = mapping.note_to_note(raw, tz=zone)
                return () if note is None else note
            case "job_categories":
                return mapping.category_to_reference(raw, tz=zone)
            case "tax_rates":
                return mapping.taxrate_to_reference(raw, tz=zone)
            case "material_bundles":
                return mapping.jobmaterialbundle_to_reference(raw, tz=zone)
            case "pricebook_items":
                return mapping.material_to_pricebook_item(
                    raw, tz=zone, tax_rates=self._tax_rate_amounts()
                )
        raise ValueError(f"servicem8 cannot map {entity}")

    def _tax_rate_amounts(self) -> dict[str, Decimal] | None:
        """{tax rate uuid: percent}, read once per provider instance (one sync run) so a
        material on a 0 % rate is not taxable. None when the connection may not read tax
        rates (an OAuth grant from before `read_tax_rates` was asked for): materials with a
        rate then count as taxable."""
        if self._tax_rates_cache is None:
            try:
                pages = self.get_client().iter_pages("taxrate", max_pages=self.max_pages)
                self._tax_rates_cache = {
                    str(r["uuid"]): mapping.as_decimal(r.get("amount"))
                    for page in pages
                    for r in page
                    if r.get("uuid")
                }
            except ProviderPermissionError:
                self._tax_rates_cache = {}
                self._tax_rates_unreadable = True
        return None if self._tax_rates_unreadable else self._tax_rates_cache

    _tax_rates_cache: dict[str, Decimal] | None = None
    _tax_rates_unreadable: bool = False

    def record_types(self, entity: str) -> tuple[type[ExternalRecord], ...]:
        return self.record_types_by_entity.get(entity) or super().record_types(entity)

    def sweep_scope(self, entity: str, record_type: type[ExternalRecord]) -> dict[str, Any]:
        """ReferenceRecord holds several entities (one per kind) and PricebookItem other
        providers' kinds too: a full run sweeps only its own kind."""
        if entity in self.reference_kinds and record_type is ExternalReference:
            return {"kind": self.reference_kinds[entity]}
        if entity == "pricebook_items" and record_type is ExternalPricebookItem:
            return {"kind": "material"}
        return {}

    # Outbox actions (see writes.py for how each is made safe to deliver twice).
    actions: ClassVar[dict[str, str]] = {
        "quote.decide": "quote_decide",
        "job.create": "job_create",
    }

    def quote_decide(self, payload: dict, *, idempotency_key: str) -> dict:
        return writes.quote_decide(self, payload, idempotency_key=idempotency_key)

    def job_create(self, payload: dict, *, idempotency_key: str) -> dict:
        return writes.job_create(self, payload, idempotency_key=idempotency_key)

    @classmethod
    def job_options_errors(cls, options: dict) -> dict[str, list[str]]:
        """Field errors for a booking's `options` (checked before the booking is stored)."""
        return writes.job_options_errors(options)

    # Webhook subscriptions (OAuth apps only; see subscriptions.py).
    webhook_objects: ClassVar[tuple[str, ...]] = tuple(subscriptions.SUBSCRIBABLE_FIELDS)

    def webhooks_supported(self) -> bool:
        return self.credential_mode(self.context.credentials) == "oauth"

    def webhook_subscriptions(self) -> list[subscriptions.Subscription]:
        return subscriptions.list_subscriptions(self)

    def webhook_subscribe(
        self, *, object_name: str, callback_url: str
    ) -> subscriptions.Subscription:
        return subscriptions.subscribe(self, object_name=object_name, callback_url=callback_url)

    def webhook_unsubscribe(self, *, subscription_uuid: str) -> None:
        subscriptions.unsubscribe(self, subscription_uuid=subscription_uuid)

    def fetch_record(self, entity: str, external_id: str) -> dict | None:
        """`GET /{object}/{uuid}.json`; None on 404. A deleted record is still returned (with
        active 0), so None means it never existed or is gone for good."""
        object_name = self.record_objects.get(entity) or self._object(entity)
        kind = self.reference_kinds.get(entity)
        if kind and external_id.startswith(f"{kind}:"):
            external_id = external_id.removeprefix(f"{kind}:")  # "<kind>:<uuid>" -> uuid
        try:
            return self.get_client().get_record(object_name, external_id)
        except ProviderNotFoundError:
            return None

    def attachment_download(self, reference: str) -> AttachmentContent:
        """`GET /attachment/{uuid}.file`, streamed. The content type and size are the
        response's own (`Content-Length`, unless the body is compressed in transit)."""
        if not UUID_RE.match(reference or ""):
            raise ProviderValidationError(
                "servicem8: an attachment reference is a uuid", provider=self.key
            )
        response = self.get_client().download("attachment", reference.lower())
        content_type = (response.header("content-type") or "").strip()
        encoding = (response.header("content-encoding") or "identity").strip().lower()
        length = (response.header("content-length") or "").strip()
        size = int(length) if length.isdigit() and encoding == "identity" else None
        return AttachmentContent(
            content_type=content_type or "application/octet-stream",
            chunks=response.iter_bytes(),
            size=size,
        )
