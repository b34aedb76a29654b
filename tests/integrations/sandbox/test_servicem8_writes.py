"""ServiceM8 writes: create/update/delete, validation, the job status workflow, scopes, rate
limits, faults (``apply_then_error``) and write stats.

Every provider exchange goes through ``Sm8.call``, which re-addresses it to the spec's server and
validates it with openapi-core, the request body included (the machinery of
``test_spec_conformance``): a test either sends a spec-valid request or says why not
(``spec="response"``), and every answer must be one the spec documents for that operation, or
is asserted to be undocumented (``spec="undocumented"``) and to have the spec's ``Error`` shape.
"""

from __future__ import annotations

import json
import threading
import time
import uuid as uuid_lib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests
from openapi_core import OpenAPI
from openapi_core.exceptions import OpenAPIError
from openapi_core.templating.paths.exceptions import PathNotFound
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS31Validator
from werkzeug.datastructures import MultiDict

from integrations.sandbox import servicem8_writes as writes
from integrations.sandbox.servicem8 import GST_TAX_RATE_UUID, OBJECTS
from tests.integrations.sandbox import (
    SM8_HEADERS,
    configure,
    control,
    sm8_oauth_tokens,
    sm8_url,
    start_sandbox,
)
from tests.integrations.sandbox import test_spec_conformance as conformance
from tests.integrations.sandbox.test_spec_conformance import SM8_SPEC

# openapi-core does not implement the oauth2 security scheme and warns about it.
pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning")

# The conformance module's fixture loading (and, once per spec file, validating) both specs:
# pytest registers a fixture under the module attribute that holds it.
specs = conformance.specs

SYDNEY = ZoneInfo("Australia/Sydney")
OK = {"errorCode": 0, "message": "OK"}
MISSING = "00000000-0000-4000-8000-000000000000"
WRITABLE = ["job", "jobmaterial", "note", "jobcontact", "company", "companycontact", "jobactivity"]
UPDATABLE = [obj for obj in WRITABLE if obj != "note"]
_NO_BODY = object()


# --- fixtures and the spec-checking client -------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    server = start_sandbox(tmp_path_factory.mktemp("sm8-writes"), records=8)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_runtime(sandbox):
    control(sandbox.url, "POST", "reset")


@pytest.fixture(scope="module")
def raw_spec(specs) -> dict[str, Any]:
    return json.loads(SM8_SPEC.read_text())


@dataclass
class Sm8:
    """A ServiceM8 client for the tests: every exchange is validated against the spec."""

    root: str
    openapi: OpenAPI
    raw: dict[str, Any]
    headers: dict[str, str]

    def call(
        self,
        method: str,
        path: str,
        body: Any = _NO_BODY,
        *,
        headers: dict[str, str] | None = None,
        spec: str = "valid",
        **kwargs: Any,
    ) -> requests.Response:
        """``spec``: "valid" (request and response), "response" (the request is deliberately
        not spec-valid) or "undocumented" (the status or path is not in the spec)."""
        if body is not _NO_BODY:
            kwargs["json"] = body
        response = requests.request(
            method, sm8_url(self.root, path), headers=headers or self.headers, timeout=10, **kwargs
        )
        self.check(response, spec)
        return response

    def check(self, response: requests.Response, spec: str) -> None:
        prepared = response.request
        url = urlsplit(prepared.url)
        body = prepared.body or b""
        request = MockRequest(
            host_url="https://api.servicem8.com",
            method=prepared.method.lower(),
            path=url.path.removeprefix("/servicem8"),
            args=MultiDict(parse_qsl(url.query, keep_blank_values=True)),
            headers=dict(prepared.headers),
            data=body.encode() if isinstance(body, str) else body,
            content_type=prepared.headers.get("Content-Type", "application/json"),
        )
        spec_response = MockResponse(
            response.content,
            status_code=response.status_code,
            headers=dict(response.headers),
            content_type=response.headers.get("Content-Type", ""),
        )
        if spec == "valid":
            self.openapi.validate_request(request)
        if spec == "undocumented":
            with pytest.raises((ResponseNotFound, PathNotFound)):
                self.openapi.validate_response(request, spec_response)
            error = {"$ref": "#/components/schemas/Error", "components": self.raw["components"]}
            OAS31Validator(error).validate(response.json())
        else:
            self.openapi.validate_response(request, spec_response)

    # Conveniences -------------------------------------------------------------------------

    def create(self, obj: str, body: dict[str, Any], **kwargs: Any) -> str:
        response = self.call("POST", f"{obj}.json", body, **kwargs)
        assert response.status_code == 200, response.text
        assert response.json() == OK
        return response.headers["x-record-uuid"]

    def update(self, obj: str, uid: str, body: dict[str, Any], **kwargs: Any) -> requests.Response:
        return self.call("POST", f"{obj}/{uid}.json", body, **kwargs)

    def delete(self, obj: str, uid: str, **kwargs: Any) -> requests.Response:
        return self.call("DELETE", f"{obj}/{uid}.json", **kwargs)

    def find(self, obj: str, uid: str) -> dict[str, Any]:
        """The record as the API lists it (``note`` has no get-by-uuid path in the spec)."""
        response = self.call("GET", f"{obj}.json", params={"$filter": f"uuid eq '{uid}'"})
        assert response.status_code == 200, response.text
        (record,) = response.json()
        return record

    def first(self, obj: str) -> dict[str, Any]:
        response = self.call("GET", f"{obj}.json", params={"$filter": "active eq 1"})
        return response.json()[0]


@pytest.fixture
def sm8(sandbox, specs, raw_spec) -> Sm8:
    return Sm8(sandbox.url, specs[0], raw_spec, dict(SM8_HEADERS))


def stored(root: str, obj: str, uid: str) -> dict[str, Any]:
    """The control API's view of a record: data, active, exact ``modified``, rendering."""
    return control(root, "GET", f"records/servicem8/{obj}/{uid}")


def stats(root: str) -> dict[str, Any]:
    return control(root, "GET", "stats")["servicem8"]


def bearer(root: str, scope: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {sm8_oauth_tokens(root, scope)['access_token']}"}


def local_now() -> datetime:
    return datetime.now(SYDNEY).replace(tzinfo=None)


def assert_recent(text: str) -> None:
    """``text`` is a ServiceM8 local timestamp within a minute of now (Sydney account)."""
    stamp = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")  # noqa: DTZ007 - account-local text
    assert abs(stamp - local_now()) < timedelta(minutes=1), text


@pytest.fixture
def refs(sm8) -> dict[str, str]:
    """Seeded records to point new ones at."""
    return {
        "company": sm8.first("company")["uuid"],
        "staff": sm8.first("staff")["uuid"],
        "material": sm8.first("material")["uuid"],
    }


def new_job(sm8: Sm8, refs: dict[str, str], status: str = "Quote", **fields: Any) -> str:
    body = {
        "status": status,
        "company_uuid": refs["company"],
        "job_address": "12 George St\nSydney NSW 2000",
        "job_description": "Replace leaking mixer tap",
        **fields,
    }
    return sm8.create("job", body)


def create_body(obj: str, refs: dict[str, str], job: str) -> dict[str, Any]:
    """A minimal, spec-valid create body per object."""
    return {
        "job": {"status": "Quote", "company_uuid": refs["company"], "job_description": "Quote"},
        "jobmaterial": {
            "job_uuid": job,
            "material_uuid": refs["material"],
            "name": "Tap washer",
            "quantity": "2",
            "price": "10.00",
            "tax_rate_uuid": GST_TAX_RATE_UUID,
        },
        "note": {
            "related_object": "job",
            "related_object_uuid": job,
            "note": "Client approved the quote.",
        },
        "jobcontact": {
            "job_uuid": job,
            "first": "Ann",
            "last": "Lee",
            "email": "ann@example.com",
            "type": "JOB",
        },
        "company": {"name": "Harbour Cafe Pty Ltd", "address_city": "Sydney"},
        "companycontact": {
            "company_uuid": refs["company"],
            "first": "Bo",
            "last": "Chen",
            "email": "bo@example.com",
            "is_primary_contact": "0",
        },
        "jobactivity": {
            "job_uuid": job,
            "staff_uuid": refs["staff"],
            "start_date": "2030-07-01 09:00:00",
            "end_date": "2030-07-01 11:00:00",
            "activity_was_scheduled": "1",
        },
    }[obj]


# A spec-valid update per object: one field changed, required fields repeated (the spec reuses
# the Create schema, with its ``required``, for updates).
UPDATES: dict[str, tuple[dict[str, Any], str]] = {
    "job": ({"status": "Quote", "purchase_order_number": "PO-7"}, "purchase_order_number"),
    "jobmaterial": ({"quantity": "3"}, "quantity"),
    "jobcontact": ({"mobile": "0412 345 678"}, "mobile"),
    "company": ({"name": "Harbour Cafe Pty Ltd", "website": "https://cafe.example"}, "website"),
    "companycontact": ({"phone": "02 9000 0000"}, "phone"),
    "jobactivity": ({"end_date": "2030-07-01 12:00:00"}, "end_date"),
}


# --- the write tables are the spec's -------------------------------------------------------------


def _read_only(create_prop: dict[str, Any], read_prop: dict[str, Any] | None) -> bool:
    read_prop = read_prop or {}
    return bool(
        create_prop.get("readOnly")
        or read_prop.get("readOnly")
        or "(Read only)" in read_prop.get("description", "")
    )


@pytest.mark.parametrize("obj", WRITABLE)
def test_write_tables_match_the_spec(raw_spec, obj):
    schema = writes.WRITE_SCHEMAS[obj]
    assert OBJECTS[obj].writes is schema
    schemas, paths = raw_spec["components"]["schemas"], raw_spec["paths"]
    create = schemas[schema.schema]
    read = schemas[schema.schema.removesuffix("Create")]["properties"]
    assert list(schema.fields) == list(create["properties"])
    for name, rule in schema.fields.items():
        prop = create["properties"][name]
        assert rule.type == prop.get("type"), name
        assert rule.format == prop.get("format"), name
        assert rule.enum == (tuple(prop["enum"]) if "enum" in prop else None), name
        assert rule.max_length == prop.get("maxLength"), name
        assert rule.read_only == _read_only(prop, read.get(name)), name
    assert schema.required == tuple(create.get("required", ()))
    assert schema.read_only_extra == set(read) - set(create["properties"]) - {"active"}
    assert writes.ACTIVE.type == read["active"]["type"]
    assert writes.ACTIVE.enum == tuple(read["active"]["enum"])
    # Operations and their OAuth scopes.
    collection, item = paths[f"/{obj}.json"], paths.get(f"/{obj}/{{uuid}}.json", {})
    operations = {"create"} if "post" in collection else set()
    operations |= {"update"} if "post" in item else set()
    operations |= {"delete"} if "delete" in item else set()
    assert schema.operations == operations

    def scopes(operation: dict[str, Any]) -> frozenset[str]:
        (oauth,) = [s["oauth2"] for s in operation["security"] if "oauth2" in s]
        return frozenset(oauth)

    assert schema.create_scopes == scopes(collection["post"])
    for method in ("post", "delete"):
        if method in item:
            assert schema.manage_scopes == scopes(item[method])
    for op in (collection["post"], item.get("post"), item.get("delete")):
        if op:
            ref = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            if ref:
                assert ref["schema"]["$ref"].endswith(f"/{schema.schema}")
            assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Result"
            }
    assert "x-record-uuid" in collection["post"]["responses"]["200"]["headers"]


def test_job_status_enum_and_dates_are_the_specs(raw_spec):
    job = raw_spec["components"]["schemas"]["JobCreate"]["properties"]
    assert tuple(job["status"]["enum"]) == writes.JOB_STATUSES
    assert set(writes.JOB_TRANSITIONS) == set(writes.JOB_STATUSES)
    for status, date_field in writes.JOB_STATUS_DATES.items():
        assert job[date_field]["description"].endswith(f"changed to {status}.")


# --- create --------------------------------------------------------------------------------------


@pytest.mark.parametrize("obj", WRITABLE)
def test_create_returns_result_and_x_record_uuid(sm8, refs, obj):
    job = new_job(sm8, refs)
    body = create_body(obj, refs, job)
    before = stats(sm8.root)["writes_applied"]
    response = sm8.call("POST", f"{obj}.json", body)
    assert response.status_code == 200
    assert response.json() == {"errorCode": 0, "message": "OK"}
    uid = response.headers["x-record-uuid"]
    assert str(uuid_lib.UUID(uid)) == uid  # a canonical, lowercase uuid
    record = sm8.find(obj, uid)
    assert record["uuid"] == uid and record["active"] == 1
    for key, value in body.items():
        assert record[key] == value, key
    assert_recent(record["edit_date"])
    assert stats(sm8.root)["writes_applied"].get(f"{obj}/{uid}") == 1
    assert f"{obj}/{uid}" not in before


def test_create_with_a_supplied_uuid(sm8, refs):
    chosen = str(uuid_lib.uuid4())
    body = {**create_body("company", refs, ""), "uuid": chosen.upper()}
    assert sm8.create("company", body) == chosen
    assert sm8.find("company", chosen)["name"] == body["name"]
    # The same uuid again: refused, and the record is not overwritten.
    again = sm8.call("POST", "company.json", {**body, "name": "Other"})
    assert again.status_code == 400
    assert again.json() == {
        "errorCode": 400,
        "message": f"uuid: a company record with uuid {chosen} already exists.",
    }
    assert sm8.find("company", chosen)["name"] == body["name"]
    bad = sm8.call("POST", "company.json", {"name": "X", "uuid": "not-a-uuid"}, spec="response")
    assert bad.status_code == 400 and "uuid: must be a UUID" in bad.json()["message"]


def test_new_job_gets_number_date_and_quote_date(sm8, refs):
    seeded = max(
        int(j["generated_job_id"])
        for j in sm8.call("GET", "job.json").json()
        if j["generated_job_id"].isdigit()
    )
    first = sm8.find("job", new_job(sm8, refs))
    second = sm8.find("job", new_job(sm8, refs))
    assert int(second["generated_job_id"]) == int(first["generated_job_id"]) + 1 > seeded
    assert first["date"] == local_now().strftime("%Y-%m-%d")
    assert_recent(first["quote_date"])
    assert first["work_order_date"] == "0000-00-00 00:00:00"
    work_order = sm8.find("job", new_job(sm8, refs, "Work Order"))
    assert_recent(work_order["work_order_date"])
    assert work_order["quote_date"] == "0000-00-00 00:00:00"


def test_note_create_date_is_set(sm8, refs):
    note = sm8.find("note", sm8.create("note", create_body("note", refs, new_job(sm8, refs))))
    assert_recent(note["create_date"])


# --- update --------------------------------------------------------------------------------------


@pytest.mark.parametrize("obj", UPDATABLE)
def test_update_changes_only_the_fields_sent_and_bumps_edit_date(sm8, refs, obj):
    uid = sm8.create(obj, create_body(obj, refs, new_job(sm8, refs)))
    before = stored(sm8.root, obj, uid)
    body, changed = UPDATES[obj]
    response = sm8.update(obj, uid, body)
    assert response.status_code == 200 and response.json() == OK
    assert "x-record-uuid" not in response.headers  # the spec declares it for create only
    after = stored(sm8.root, obj, uid)
    assert after["data"][changed] == body[changed]
    untouched = {k: v for k, v in before["data"].items() if k not in body}
    assert {k: after["data"][k] for k in untouched} == untouched
    assert after["modified"] > before["modified"]
    assert after["active"] is True
    assert stats(sm8.root)["writes_applied"][f"{obj}/{uid}"] == 2


def test_job_update_is_partial_with_its_required_status(sm8, refs):
    """JobCreate (the update body too) requires ``status``; sending the current one changes
    only the other fields sent (a body without it: test_updates_need_the_create_schemas_...)."""
    uid = new_job(sm8, refs)
    response = sm8.update(
        "job", uid, {"status": "Quote", "job_description": "Also check the hot water unit"}
    )
    assert response.status_code == 200
    record = sm8.find("job", uid)
    assert record["job_description"] == "Also check the hot water unit"
    assert record["status"] == "Quote"


def test_update_errors(sm8, refs):
    uid = new_job(sm8, refs)
    missing = sm8.update("job", MISSING, {"status": "Work Order"})
    assert missing.status_code == 404
    assert missing.json()["errorCode"] == 404
    bad = sm8.update("job", "not-a-uuid", {"status": "Work Order"}, spec="response")
    assert bad.status_code == 400 and bad.json()["message"] == "Invalid UUID."
    other = sm8.update("job", uid, {"status": "Quote", "uuid": MISSING})
    assert other.status_code == 400 and "uuid: does not match" in other.json()["message"]
    same = sm8.update("job", uid, {"status": "Quote", "uuid": uid.upper(), "badges": "[]"})
    assert same.status_code == 200


def test_read_only_fields_are_ignored(sm8, refs):
    uid = new_job(
        sm8,
        refs,
        generated_job_id="X-1",
        total_invoice_amount="999.00",
        edit_date="2001-01-01 00:00:00",
        lng=1.5,
        geo_city="Nowhere",
        completion_actioned_by_uuid=refs["staff"],
    )
    job = sm8.find("job", uid)
    assert job["generated_job_id"].isdigit()
    assert job["total_invoice_amount"] == "0.00"
    assert job["edit_date"] != "2001-01-01 00:00:00"
    assert job["lng"] == 0.0 and job["geo_city"] == ""
    assert "completion_actioned_by_uuid" not in job
    company = sm8.create("company", {"name": "Jo Citizen", "is_individual": 1})
    assert sm8.find("company", company)["is_individual"] == 0  # "cannot be set via the API"


def test_incremental_read_sees_the_write(sm8, refs):
    uid = new_job(sm8, refs)
    mark = sm8.find("job", uid)["edit_date"]
    time.sleep(1.05)  # edit_date has one-second resolution
    assert sm8.update("job", uid, {"status": "Work Order"}).status_code == 200
    changed = sm8.call("GET", "job.json", params={"$filter": f"edit_date gt '{mark}'"}).json()
    assert uid in {r["uuid"] for r in changed}


def test_concurrent_updates_of_one_record_lose_nothing(sm8, refs):
    uid = sm8.create("company", {"name": "Busy Pty Ltd"})
    fields = ["abn_number", "website", "fax_number", "billing_attention", "payment_terms", "badges"]

    responses: list[requests.Response] = []

    def worker(name: str) -> None:
        # Plain requests in the threads; the spec checks run afterwards, in this thread.
        responses.append(
            requests.post(
                sm8_url(sm8.root, f"company/{uid}.json"),
                json={"name": "Busy Pty Ltd", name: f"v-{name}"},
                headers=SM8_HEADERS,
                timeout=10,
            )
        )

    threads = [threading.Thread(target=worker, args=(name,)) for name in fields]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for response in responses:
        assert response.status_code == 200
        sm8.check(response, "valid")
    record = sm8.find("company", uid)
    assert {name: record[name] for name in fields} == {name: f"v-{name}" for name in fields}


# --- delete --------------------------------------------------------------------------------------


@pytest.mark.parametrize("obj", UPDATABLE)
def test_delete_is_a_soft_delete(sm8, refs, obj):
    uid = sm8.create(obj, create_body(obj, refs, new_job(sm8, refs)))
    before = stored(sm8.root, obj, uid)
    response = sm8.delete(obj, uid)
    assert response.status_code == 200 and response.json() == OK
    after = stored(sm8.root, obj, uid)
    assert after["active"] is False and after["modified"] > before["modified"]
    assert after["data"] == before["data"]
    assert sm8.call("GET", f"{obj}/{uid}.json").json()["active"] == 0
    listed = sm8.call("GET", f"{obj}.json", params={"$filter": "active eq 0"}).json()
    assert uid in {r["uuid"] for r in listed}
    # "does not exist or has already been deleted": a second delete is 404, so is an update…
    assert sm8.delete(obj, uid).status_code == 404
    body, _ = UPDATES[obj]
    assert sm8.update(obj, uid, body).status_code == 404
    # …except the one that restores it ("setting their active field to 1").
    assert sm8.update(obj, uid, {**body, "active": 1}).status_code == 200
    assert stored(sm8.root, obj, uid)["active"] is True
    assert sm8.delete(obj, MISSING).status_code == 404
    bad = sm8.delete(obj, "nope", spec="response")
    assert bad.status_code == 400 and bad.json()["message"] == "Invalid UUID."


def test_notes_can_only_be_created(sm8, refs):
    """The spec has ``POST /note.json`` and no ``/note/{uuid}.json`` path at all."""
    uid = sm8.create("note", create_body("note", refs, new_job(sm8, refs)))
    for response in (
        sm8.update("note", uid, {"note": "edited"}, spec="undocumented"),
        sm8.delete("note", uid, spec="undocumented"),
    ):
        assert response.status_code == 405
        assert response.json()["errorCode"] == 405
    assert sm8.find("note", uid)["note"] == "Client approved the quote."


def test_writes_to_objects_not_emulated_for_writing(sm8):
    staff = sm8.call("POST", "staff.json", {"first": "New"}, spec="undocumented")
    assert staff.status_code == 404
    assert staff.json()["message"] == "Writes to 'staff' are not emulated by the sandbox."
    unknown = sm8.call("POST", "nope.json", {"a": 1}, spec="undocumented")
    assert unknown.status_code == 404


# --- validation ----------------------------------------------------------------------------------

# (object, body with "{job}" placeholders, expected message part, request is spec-valid)
INVALID: list[tuple[str, dict[str, Any], str, bool]] = [
    ("job", {"status": "Approved"}, "status: must be one of Quote, Work Order", False),
    ("job", {"status": 1}, "status: must be a string", False),
    ("job", {}, "status: required", False),
    (
        "job",
        {"status": "Quote", "job_description": None},
        "job_description: must be a string",
        False,
    ),
    ("job", {"status": "Quote", "company_uuid": "acme"}, "company_uuid: must be a UUID", False),
    ("job", {"status": "Quote", "invoice_sent": 2}, "invoice_sent: must be one of 0, 1", False),
    ("job", {"status": "Quote", "quote_sent": True}, "quote_sent: must be an integer", False),
    ("job", {"status": "Quote", "purchase_order_number": "P" * 101}, "at most 100", False),
    # Not forbidden by the schema (no additionalProperties: false), refused by the sandbox.
    ("job", {"status": "Quote", "colour": "red"}, "colour: unknown field for JobCreate", True),
    ("jobmaterial", {"job_uuid": "{job}", "quantity": 2}, "quantity: must be a string", False),
    ("jobmaterial", {"job_uuid": "{job}", "name": "x"}, "quantity: required", False),
    ("jobmaterial", {"job_uuid": "{job}", "quantity": " "}, "quantity: cannot be empty", True),
    ("jobmaterial", {"quantity": "1"}, "job_uuid: required", True),
    ("jobcontact", {"job_uuid": MISSING, "first": "A"}, "job_uuid: no such job", True),
    ("jobcontact", {"job_uuid": "{job}", "email": "ann"}, "email: must be an email address", False),
    ("companycontact", {"email": "x@"}, "email: must be an email address", False),
    ("company", {"name": "N" * 101}, "name: must be at most 100 characters", False),
    ("company", {"address_city": "Sydney"}, "name: required", False),
    (
        "jobactivity",
        {"job_uuid": "{job}", "activity_was_scheduled": "1", "activity_was_recorded": "1"},
        "cannot both be 1",
        True,
    ),
    ("jobactivity", {"travel_time_in_seconds": "60"}, "must be an integer", False),
    ("note", {"note": "x", "related_object_uuid": "job-1"}, "must be a UUID", False),
    ("note", {"note": "x", "active": 2}, "active: must be one of 0, 1", True),
]


@pytest.mark.parametrize(("obj", "body", "message", "request_valid"), INVALID)
def test_invalid_bodies_are_400_and_change_nothing(sm8, refs, obj, body, message, request_valid):
    job = new_job(sm8, refs)
    body = {k: job if v == "{job}" else v for k, v in body.items()}
    before = stats(sm8.root)["writes_applied"]
    response = sm8.call("POST", f"{obj}.json", body, spec="valid" if request_valid else "response")
    assert response.status_code == 400, response.text
    assert response.json()["errorCode"] == 400
    assert response.json()["message"].startswith("Invalid request body: ")
    assert message in response.json()["message"]
    assert stats(sm8.root)["writes_applied"] == before


def test_invalid_update_changes_nothing(sm8, refs):
    uid = new_job(sm8, refs)
    before = stored(sm8.root, "job", uid)
    response = sm8.update("job", uid, {"status": "Quote", "quote_sent": "yes"}, spec="response")
    assert response.status_code == 400 and "quote_sent: must be an integer" in response.text
    contact = sm8.create("jobcontact", create_body("jobcontact", refs, uid))
    moved = sm8.update("jobcontact", contact, {"job_uuid": new_job(sm8, refs)})
    assert moved.status_code == 400 and "job_uuid: cannot be changed once set" in moved.text
    assert stored(sm8.root, "job", uid)["modified"] == before["modified"]


@pytest.mark.parametrize(
    ("obj", "body", "message"),
    [
        ("jobmaterial", {"name": "[Not approved] Labour"}, "quantity: required"),
        ("job", {"purchase_order_number": "PO-9"}, "status: required"),
    ],
)
def test_updates_need_the_create_schemas_required_fields(sm8, refs, obj, body, message):
    """The spec's update body is the <Name>Create schema, `required` included."""
    job = new_job(sm8, refs)
    uid = job if obj == "job" else sm8.create(obj, create_body(obj, refs, job))
    before = stored(sm8.root, obj, uid)
    refused = sm8.update(obj, uid, body, spec="response")
    assert refused.status_code == 400 and message in refused.json()["message"]
    with pytest.raises(OpenAPIError):  # the spec's validator refuses the request as well
        sm8.check(refused, "valid")
    assert stored(sm8.root, obj, uid) == before
    required = {name: before["data"][name] for name in writes.WRITE_SCHEMAS[obj].required}
    assert sm8.update(obj, uid, {**body, **required}).status_code == 200


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {
                "data": "status=Quote",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            "must be JSON",
        ),
        ({"data": "{nope", "headers": {"Content-Type": "application/json"}}, "not valid JSON"),
        ({"data": '["Quote"]', "headers": {"Content-Type": "application/json"}}, "a JSON object"),
    ],
)
def test_bodies_that_are_not_json_objects_are_400(sm8, kwargs, message):
    headers = {**SM8_HEADERS, **kwargs.pop("headers")}
    response = sm8.call("POST", "job.json", headers=headers, spec="response", **kwargs)
    assert response.status_code == 400 and message in response.json()["message"]


# --- the job status workflow ---------------------------------------------------------------------

ALLOWED = {
    ("Quote", "Work Order"),  # approval
    ("Quote", "Unsuccessful"),  # rejection
    ("Quote", "Completed"),
    ("Work Order", "Quote"),
    ("Work Order", "Completed"),
    ("Work Order", "Unsuccessful"),  # cancellation
}
PAIRS = [(a, b) for a in writes.JOB_STATUSES for b in writes.JOB_STATUSES]


@pytest.mark.parametrize(("current", "new"), PAIRS)
def test_status_transitions(sm8, refs, current, new):
    uid = new_job(sm8, refs, current)
    before = stored(sm8.root, "job", uid)
    response = sm8.update("job", uid, {"status": new})
    after = stored(sm8.root, "job", uid)
    if current == new:
        # Idempotent: allowed, and nothing changes (edit_date and status dates included).
        assert response.status_code == 200 and response.json() == OK
        assert after == before
        assert stats(sm8.root)["writes_applied"][f"job/{uid}"] == 1
    elif (current, new) in ALLOWED:
        assert response.status_code == 200
        assert after["data"]["status"] == new
        assert_recent(after["data"][writes.JOB_STATUS_DATES[new]])
        assert (
            after["data"][writes.JOB_STATUS_DATES[current]]
            == (before["data"][writes.JOB_STATUS_DATES[current]])
        )
    else:
        assert response.status_code == 400
        message = response.json()["message"]
        assert f"Job status cannot change from '{current}' to '{new}'" in message
        assert after == before


def test_approve_then_approve_again_changes_once(sm8, refs):
    uid = new_job(sm8, refs)
    assert sm8.update("job", uid, {"status": "Work Order"}).status_code == 200
    approved = stored(sm8.root, "job", uid)
    assert sm8.update("job", uid, {"status": "Work Order"}).status_code == 200
    assert stored(sm8.root, "job", uid) == approved
    assert stats(sm8.root)["writes_applied"][f"job/{uid}"] == 2  # create + approve
    # A rejection arriving after the approval cancels the work order (documented meaning of
    # Unsuccessful); once closed, nothing moves it back.
    assert sm8.update("job", uid, {"status": "Unsuccessful"}).status_code == 200
    refused = sm8.update("job", uid, {"status": "Quote"})
    assert refused.status_code == 400
    assert refused.json() == {
        "errorCode": 400,
        "message": "Invalid request body: Job status cannot change from 'Unsuccessful' to "
        "'Quote': Unsuccessful is a final status.",
    }


def test_explicit_dates_and_flag_stamps(sm8, refs):
    uid = new_job(sm8, refs)
    sm8.update("job", uid, {"status": "Work Order", "work_order_date": "2030-01-02 03:04:05"})
    job = sm8.find("job", uid)
    assert job["work_order_date"] == "2030-01-02 03:04:05"
    assert job["quote_sent_stamp"] == "0000-00-00 00:00:00"
    sm8.update("job", uid, {"status": "Work Order", "quote_sent": 1})
    assert_recent(sm8.find("job", uid)["quote_sent_stamp"])


def test_job_total_follows_its_materials(sm8, refs):
    uid = new_job(sm8, refs)
    line = {
        "job_uuid": uid,
        "name": "Labour",
        "price": "100.00",
        "tax_rate_uuid": GST_TAX_RATE_UUID,
    }
    first = sm8.create("jobmaterial", {**line, "quantity": "1.5"})
    assert sm8.find("job", uid)["total_invoice_amount"] == "165.00"
    second = sm8.create("jobmaterial", {**line, "quantity": "1", "price": "9.99"})
    assert sm8.find("job", uid)["total_invoice_amount"] == "175.99"
    before = stored(sm8.root, "job", uid)["modified"]
    sm8.update("jobmaterial", first, {"quantity": "2"})
    assert sm8.find("job", uid)["total_invoice_amount"] == "230.99"
    assert stored(sm8.root, "job", uid)["modified"] > before  # visible to incremental reads
    sm8.delete("jobmaterial", second)
    assert sm8.find("job", uid)["total_invoice_amount"] == "220.00"


# --- scopes --------------------------------------------------------------------------------------


def test_job_scopes_per_operation(sm8, refs):
    uid = new_job(sm8, refs)
    body = {"status": "Quote", "company_uuid": refs["company"]}
    read_only = bearer(sm8.root, "read_jobs")
    manage = bearer(sm8.root, "read_jobs manage_jobs")
    create = bearer(sm8.root, "create_jobs")
    for headers in (read_only, manage):
        refused = sm8.call("POST", "job.json", body, headers=headers)
        assert refused.status_code == 403 and refused.json()["errorCode"] == 403
    assert sm8.create("job", body, headers=create)
    for headers in (read_only, create):
        assert sm8.update("job", uid, body, headers=headers).status_code == 403
        assert sm8.delete("job", uid, headers=headers).status_code == 403
    assert sm8.update("job", uid, {"status": "Work Order"}, headers=manage).status_code == 200
    assert sm8.delete("job", uid, headers=manage).status_code == 200


@pytest.mark.parametrize("obj", [obj for obj in WRITABLE if obj != "job"])
def test_manage_scopes_per_object(sm8, refs, obj):
    schema = writes.WRITE_SCHEMAS[obj]
    body = create_body(obj, refs, new_job(sm8, refs))
    other = bearer(sm8.root, "read_jobs manage_jobs create_jobs")
    assert sm8.call("POST", f"{obj}.json", body, headers=other).status_code == 403
    allowed = bearer(sm8.root, " ".join(schema.create_scopes | schema.manage_scopes))
    uid = sm8.create(obj, body, headers=allowed)
    if obj == "note":
        return
    update, _ = UPDATES[obj]
    assert sm8.update(obj, uid, update, headers=other).status_code == 403
    assert sm8.delete(obj, uid, headers=other).status_code == 403
    assert sm8.update(obj, uid, update, headers=allowed).status_code == 200
    assert sm8.delete(obj, uid, headers=allowed).status_code == 200


def test_bad_credentials_on_writes_are_401(sm8, refs):
    uid = new_job(sm8, refs)
    for call in (
        lambda h: sm8.call("POST", "job.json", {"status": "Quote"}, headers=h),
        lambda h: sm8.update("job", uid, {"status": "Work Order"}, headers=h),
        lambda h: sm8.delete("job", uid, headers=h),
    ):
        response = call({"X-Api-Key": "wrong"})
        assert response.status_code == 401 and response.json()["errorCode"] == 401
    assert sm8.find("job", uid)["status"] == "Quote"


# --- rate limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("rate_limit_per_minute", "Number of allowed API requests per minute exceeded"),
        ("rate_limit_per_day", "Number of allowed API requests per day exceeded"),
    ],
)
def test_writes_share_the_rate_limits(sm8, refs, limit, message):
    uid = new_job(sm8, refs)
    control(sm8.root, "POST", "reset")  # fresh windows: the setup above made requests
    configure(sm8.root, servicem8={limit: 2})
    assert sm8.call("GET", f"job/{uid}.json").status_code == 200
    assert sm8.update("job", uid, {"status": "Work Order"}).status_code == 200
    for response in (
        sm8.update("job", uid, {"status": "Completed"}),
        sm8.call("POST", "job.json", {"status": "Quote"}),
        sm8.delete("job", uid),
        sm8.call("GET", "job.json"),
    ):
        assert response.status_code == 429
        assert response.json() == {"errorCode": 429, "message": message}
    assert stored(sm8.root, "job", uid)["data"]["status"] == "Work Order"  # nothing applied
    assert stats(sm8.root)["rate_limited"] == {limit.removeprefix("rate_limit_"): 4}


# --- faults --------------------------------------------------------------------------------------


def test_queued_error_on_a_write_is_not_applied(sm8, refs):
    uid = new_job(sm8, refs)
    control(sm8.root, "POST", "faults", {"queue": [{"status": 500, "method": "POST"}]})
    # A read does not consume the POST-only entry.
    assert sm8.call("GET", f"job/{uid}.json").status_code == 200
    failed = sm8.update("job", uid, {"status": "Work Order"})
    assert failed.status_code == 500 and failed.json()["errorCode"] == 500
    assert sm8.find("job", uid)["status"] == "Quote"
    assert sm8.update("job", uid, {"status": "Work Order"}).status_code == 200
    assert stats(sm8.root)["writes_applied"][f"job/{uid}"] == 2  # create + one approval


def test_queued_429_on_a_write(sm8, refs):
    control(
        sm8.root,
        "POST",
        "faults",
        {"queue": [{"status": 429, "method": "WRITE", "path": "/servicem8/api_1.0/note.json"}]},
    )
    job = new_job(sm8, refs)  # POST job.json: the path filter leaves the entry queued
    limited = sm8.call("POST", "note.json", create_body("note", refs, job))
    assert limited.status_code == 429 and limited.json()["errorCode"] == 429
    assert sm8.create("note", create_body("note", refs, job))
    assert stats(sm8.root)["rate_limited"] == {"fault": 1}


def test_apply_then_error_applies_the_write_once(sm8, refs):
    uid = new_job(sm8, refs)
    control(
        sm8.root,
        "POST",
        "faults",
        {
            "queue": [
                {
                    "apply_then_error": True,
                    "status": 500,
                    "method": "POST",
                    "path": "/servicem8/api_1.0/job/*.json",
                }
            ]
        },
    )
    failed = sm8.update("job", uid, {"status": "Work Order"})
    assert failed.status_code == 500 and failed.json()["errorCode"] == 500
    job = sm8.find("job", uid)
    assert job["status"] == "Work Order"  # applied despite the 500
    # The client retries; the same status again is a no-op, so the job changed exactly once.
    assert sm8.update("job", uid, {"status": "Work Order"}).status_code == 200
    assert sm8.find("job", uid) == job
    counts = stats(sm8.root)
    assert counts["writes_applied"][f"job/{uid}"] == 2  # create + approval
    assert counts["faults_injected"] == {"queue": 1, "apply_then_error": 1}
    assert counts["writes_by_path"][f"POST /servicem8/api_1.0/job/{uid}.json"] == 2


def test_apply_then_error_on_create_and_with_a_client_timeout(sm8, refs):
    control(sm8.root, "POST", "faults", {"queue": [{"apply_then_error": True, "method": "POST"}]})
    marker = f"created-despite-500 {uuid_lib.uuid4()}"
    failed = sm8.call("POST", "job.json", {"status": "Quote", "job_description": marker})
    assert failed.status_code == 500 and "x-record-uuid" not in failed.headers
    found = sm8.call("GET", "job.json", params={"$filter": f"job_description eq '{marker}'"})
    assert len(found.json()) == 1
    # delay_seconds runs after the write: a client that times out still changed the provider.
    uid = new_job(sm8, refs)
    control(
        sm8.root,
        "POST",
        "faults",
        {"queue": [{"apply_then_error": True, "status": 503, "delay_seconds": 0.4}]},
    )
    with pytest.raises(requests.Timeout):
        requests.post(
            sm8_url(sm8.root, f"job/{uid}.json"),
            json={"status": "Work Order"},
            headers=SM8_HEADERS,
            timeout=0.15,
        )
    time.sleep(0.5)
    assert sm8.find("job", uid)["status"] == "Work Order"


def test_apply_then_error_rate_hits_writes_only(sm8, refs):
    uid = new_job(sm8, refs)
    control(sm8.root, "POST", "faults", {"apply_then_error_rate": 1.0, "error_statuses": [502]})
    assert sm8.call("GET", f"job/{uid}.json").status_code == 200
    failed = sm8.call("POST", f"job/{uid}.json", {"status": "Work Order"}, spec="undocumented")
    assert failed.status_code == 502  # 502 is not among the spec's documented statuses
    assert stored(sm8.root, "job", uid)["data"]["status"] == "Work Order"
    assert stats(sm8.root)["faults_injected"] == {"apply_then_error": 1}


@pytest.mark.parametrize(
    "bad",
    [
        {"queue": [{"apply_then_error": "yes"}]},
        {"queue": [{"status": 500, "method": "FETCH"}]},
        {"queue": [{"status": 500, "path": 7}]},
        {"apply_then_error_rate": 1.5},
    ],
)
def test_invalid_write_fault_config_is_400(sandbox, bad):
    response = requests.post(f"{sandbox.url}/_sandbox/faults", json=bad, timeout=5)
    assert response.status_code == 400, bad


# --- stats ---------------------------------------------------------------------------------------


def test_write_stats(sm8, refs):
    uid = new_job(sm8, refs)
    control(sm8.root, "POST", "stats/reset")
    sm8.call("GET", f"job/{uid}.json")
    sm8.update("job", uid, {"status": "Work Order"})
    sm8.update("job", uid, {"status": "Work Order"})  # no-op
    sm8.update("job", uid, {"status": "Quote", "badges": 1}, spec="response")  # 400
    sm8.update("job", uid, {"status": "Completed"}, headers={"X-Api-Key": "wrong"})  # 401
    created = sm8.create("note", create_body("note", refs, uid))
    sm8.delete("job", uid)
    counts = stats(sm8.root)
    assert counts["requests_total"] == 7
    assert counts["writes_total"] == 6
    assert counts["writes_by_path"] == {
        f"POST /servicem8/api_1.0/job/{uid}.json": 4,
        "POST /servicem8/api_1.0/note.json": 1,
        f"DELETE /servicem8/api_1.0/job/{uid}.json": 1,
    }
    assert counts["requests_by_path"] == {
        "GET /servicem8/api_1.0/job/{uuid}.json": 1,
        "POST /servicem8/api_1.0/job/{uuid}.json": 4,
        "POST /servicem8/api_1.0/note.json": 1,
        "DELETE /servicem8/api_1.0/job/{uuid}.json": 1,
    }
    assert counts["writes_applied"] == {f"job/{uid}": 2, f"note/{created}": 1}
    assert counts["responses_by_status"] == {"200": 5, "400": 1, "401": 1}
