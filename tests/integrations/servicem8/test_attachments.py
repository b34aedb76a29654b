"""ServiceM8 attachments (issue #7): mapping `attachment` records, listing them, streaming a
file through `GET /attachment/{uuid}.file`, and the sandbox's emulation of both."""

from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from werkzeug.datastructures import MultiDict

from integrations import registry
from integrations.base import (
    AttachmentContent,
    AttachmentDownloadUnsupported,
    Capability,
    ExternalAttachment,
    ProviderContext,
)
from integrations.exceptions import (
    BudgetExhausted,
    ProviderNotFoundError,
    ProviderPermissionError,
    ProviderValidationError,
)
from integrations.http import RetryPolicy
from integrations.providers.servicem8 import mapping
from integrations.sandbox import accounts
from integrations.sandbox.servicem8 import attachment_file
from tests.integrations.sandbox import SM8_HEADERS, configure, control, sm8_url, start_sandbox

API = "https://api.servicem8.com/api_1.0"
SYDNEY = "Australia/Sydney"
JOB = "5f3c6b8e-2a41-4d7b-9e10-6c2f1a9b3d47"
ATTACHMENT = "0b7e6f2a-9c13-4e58-a1d4-7f2e8b6c5a90"
SPEC = (
    Path(__file__).resolve().parents[4]
    / "shared"
    / "provider-specs"
    / "servicem8"
    / "servicem8-api_1.0.openapi.json"
)


def sm8(**kwargs):
    context = ProviderContext(
        integration_id=1,
        credentials=kwargs.pop("credentials", {"api_key": "sm8-key"}),
        config=kwargs.pop("config", {"timezone": SYDNEY}),
        rate_limit_enabled=False,
        retry=kwargs.pop("retry", RetryPolicy(attempts=1)),
        **kwargs,
    )
    return registry.get("servicem8")(context)


def raw_attachment(**extra) -> dict:
    """An `attachment` as the spec's example shows it (components.schemas.Attachment)."""
    return {
        "uuid": ATTACHMENT,
        "active": 1,
        "edit_date": "2025-03-04 09:30:00",
        "related_object": "job",
        "related_object_uuid": JOB,
        "attachment_name": "Hot water quote",
        "file_type": ".pdf",
        "created_by_staff_uuid": "123e4567-ac97-4832-b909-23eb253f088b",
        "timestamp": "2025-03-04 09:29:58",
        "attachment_source": "QUOTE",
        "tags": "",
        "lng": 151.2093,
        "lat": -33.8688,
        "photo_width": "",
        "photo_height": "",
        "extracted_info": "",
        "is_favourite": "0",
        "metadata": "",
        **extra,
    }


# --- mapping ---------------------------------------------------------------------------------


def test_a_job_attachment_maps_to_its_metadata():
    provider = sm8()
    record = provider.map_record("attachments", raw_attachment())
    assert isinstance(record, ExternalAttachment)
    assert record.external_id == record.provider_reference == ATTACHMENT
    assert record.job_external_id == JOB
    # The name gains the extension file_type gives; the type comes from it.
    assert (record.file_name, record.content_type) == ("Hot water quote.pdf", "application/pdf")
    assert record.size_bytes is None  # ServiceM8 does not say
    assert record.deleted is False
    # edit_date is Sydney local time (UTC+11 in March).
    assert record.remote_updated_at == datetime(2025, 3, 3, 22, 30, tzinfo=UTC)
    assert record.raw["attachment_source"] == "QUOTE"


@pytest.mark.parametrize(
    ("name", "file_type", "expected_name", "expected_type"),
    [
        ("IMG_0042.jpg", ".jpg", "IMG_0042.jpg", "image/jpeg"),
        ("IMG_0042.JPG", ".jpg", "IMG_0042.JPG", "image/jpeg"),
        ("Site plan", "PNG", "Site plan.png", "image/png"),
        ("", ".pdf", "attachment.pdf", "application/pdf"),
        ("notes", "", "notes", "application/octet-stream"),
        ("scan", "application/pdf", "scan", "application/pdf"),
        ("thing", ".zzunknown", "thing.zzunknown", "application/octet-stream"),
        ("  Report  ", ".txt", "Report.txt", "text/plain"),
    ],
)
def test_names_and_content_types(name, file_type, expected_name, expected_type):
    record = mapping.attachment_to_attachment(
        raw_attachment(attachment_name=name, file_type=file_type), tz=mapping.ZoneInfo(SYDNEY)
    )
    assert (record.file_name, record.content_type) == (expected_name, expected_type)


def test_a_deleted_attachment_maps_deleted():
    record = sm8().map_record("attachments", raw_attachment(active=0))
    assert record.deleted is True


@pytest.mark.parametrize("related", ["company", "staff", "COMPANY", ""])
def test_attachments_of_other_objects_are_skipped_not_errors(related):
    assert sm8().map_record("attachments", raw_attachment(related_object=related)) == ()


def test_a_job_attachment_without_its_job_cannot_be_mapped():
    with pytest.raises(ValueError, match="related_object_uuid"):
        sm8().map_record("attachments", raw_attachment(related_object_uuid=""))


def test_attachments_are_an_entity_after_jobs():
    provider = sm8()
    assert Capability.READ_ATTACHMENTS in provider.capabilities
    assert provider.entities.index("attachments") > provider.entities.index("jobs")
    assert provider.record_types("attachments") == (ExternalAttachment,)
    assert "read_attachments" in provider.oauth_scopes.split()


@responses.activate
def test_listing_pages_through_attachment_json_and_skips_other_objects():
    first = [raw_attachment(), raw_attachment(uuid=JOB, related_object="company")]
    second = [raw_attachment(uuid="9d1c0e3b-6a7f-4b25-8e94-3f0a2c1d7b68", active=0)]
    responses.get(
        f"{API}/attachment.json",
        json=first,
        headers={"x-next-cursor": "c-2"},
        match=[responses.matchers.query_param_matcher({"cursor": "-1"})],
    )
    responses.get(
        f"{API}/attachment.json",
        json=second,
        match=[responses.matchers.query_param_matcher({"cursor": "c-2"})],
    )
    records = list(sm8().iter_records("attachments"))
    assert [(r.external_id, r.deleted) for r in records] == [
        (ATTACHMENT, False),
        ("9d1c0e3b-6a7f-4b25-8e94-3f0a2c1d7b68", True),
    ]
    assert all(c.request.headers["X-Api-Key"] == "sm8-key" for c in responses.calls)


@responses.activate
def test_an_incremental_listing_filters_on_edit_date():
    responses.get(f"{API}/attachment.json", json=[])
    since = datetime(2025, 3, 3, 22, 30, tzinfo=UTC)
    list(sm8().iter_records("attachments", updated_since=since))
    (call,) = responses.calls
    query = parse_qs(urlsplit(call.request.url).query)
    assert query["$filter"] == ["edit_date gt '2025-03-04 09:29:59'"]


@responses.activate
def test_one_attachment_is_read_at_the_specs_dboattachment_path():
    responses.get(f"{API}/dboattachment/{ATTACHMENT}.json", json=raw_attachment())
    responses.get(f"{API}/dboattachment/{JOB}.json", status=404, json={"errorCode": 404})
    assert sm8().fetch_record("attachments", ATTACHMENT)["uuid"] == ATTACHMENT
    assert sm8().fetch_record("attachments", JOB) is None


# --- download --------------------------------------------------------------------------------

BODY = b"%PDF-1.4\n" + bytes(range(256)) * 700  # ~179 KB: several chunks


@responses.activate
def test_download_streams_the_file_with_the_api_key_in_a_header():
    responses.get(
        f"{API}/attachment/{ATTACHMENT}.file",
        body=BODY,
        content_type="application/pdf",
        headers={"Content-Length": str(len(BODY))},
    )
    content = sm8().attachment_download(ATTACHMENT)
    assert isinstance(content, AttachmentContent)
    assert content.content_type == "application/pdf"
    assert content.size == len(BODY)
    chunks = list(content.chunks)
    assert len(chunks) > 1 and b"".join(chunks) == BODY
    (call,) = responses.calls
    assert call.request.headers["X-Api-Key"] == "sm8-key"
    assert call.request.headers["Accept"] == "*/*"
    # The key travels in a header, never in the URL.
    assert "sm8-key" not in call.request.url


@responses.activate
def test_download_through_oauth_uses_the_bearer_token():
    from integrations.auth import MemoryTokenStore

    credentials = {"refresh_token": "rt-1", "client_id": "c", "client_secret": "s"}
    responses.post(
        "https://api.servicem8.com/oauth/access_token",
        json={"access_token": "at-1", "refresh_token": "rt-2", "expires_in": 3600},
    )
    responses.get(f"{API}/attachment/{ATTACHMENT}.file", body=b"x", content_type="text/plain")
    provider = sm8(credentials=credentials, token_store=MemoryTokenStore(credentials))
    assert b"".join(provider.attachment_download(ATTACHMENT).chunks) == b"x"
    assert responses.calls[-1].request.headers["Authorization"] == "Bearer at-1"
    assert "at-1" not in responses.calls[-1].request.url


@responses.activate
def test_a_compressed_transfer_has_no_known_size():
    responses.get(
        f"{API}/attachment/{ATTACHMENT}.file",
        body=gzip.compress(BODY),
        content_type="application/pdf",
        headers={"Content-Encoding": "gzip"},
    )
    content = sm8().attachment_download(ATTACHMENT)
    assert content.size is None
    assert b"".join(content.chunks) == BODY


@responses.activate
def test_download_without_a_content_type_is_octet_stream():
    responses.get(f"{API}/attachment/{ATTACHMENT}.file", body=b"abc", content_type=None)
    content = sm8().attachment_download(ATTACHMENT)
    assert content.content_type == "application/octet-stream"


@responses.activate
def test_download_errors_are_typed():
    url = f"{API}/attachment/{ATTACHMENT}.file"
    responses.get(url, status=404, json={"errorCode": 404, "message": "Resource not found."})
    with pytest.raises(ProviderNotFoundError):
        sm8().attachment_download(ATTACHMENT)
    responses.replace(responses.GET, url, status=403, json={"errorCode": 403})
    with pytest.raises(ProviderPermissionError):
        sm8().attachment_download(ATTACHMENT)
    responses.replace(
        responses.GET,
        url,
        status=429,
        json={"errorCode": 429, "message": "Number of allowed API requests per day exceeded"},
    )
    with pytest.raises(BudgetExhausted):
        sm8().attachment_download(ATTACHMENT)


@responses.activate
def test_download_retries_a_server_error_before_the_body():
    url = f"{API}/attachment/{ATTACHMENT}.file"
    responses.get(url, status=503, json={"errorCode": 503})
    responses.get(url, body=BODY, content_type="application/pdf")
    provider = sm8(retry=RetryPolicy(attempts=2, base=0.0))
    assert b"".join(provider.attachment_download(ATTACHMENT).chunks) == BODY
    assert len(responses.calls) == 2


@responses.activate
@pytest.mark.parametrize("reference", ["", "../vendor", "https://evil.test/x", "123"])
def test_a_reference_that_is_not_a_uuid_is_refused_without_a_call(reference):
    with pytest.raises(ProviderValidationError):
        sm8().attachment_download(reference)
    assert len(responses.calls) == 0


def test_a_provider_without_attachments_says_so():
    servicetitan = registry.get("servicetitan")(
        ProviderContext(integration_id=2, credentials={}, rate_limit_enabled=False)
    )
    with pytest.raises(AttachmentDownloadUnsupported):
        servicetitan.attachment_download("1")


# --- the sandbox's emulation -----------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    server = start_sandbox(tmp_path_factory.mktemp("attachments"), records=40)
    yield server
    server.stop()


@pytest.fixture
def fresh(sandbox):
    control(sandbox.url, "POST", "reset")
    return sandbox


def _all(root: str) -> list[dict]:
    response = requests.get(sm8_url(root, "attachment.json"), headers=SM8_HEADERS, timeout=10)
    assert response.status_code == 200
    return response.json()


def test_sandbox_attachments_belong_to_seeded_jobs_and_clients(fresh):
    files = _all(fresh.url)
    jobs = {
        j["uuid"]
        for j in requests.get(
            sm8_url(fresh.url, "job.json"), headers=SM8_HEADERS, timeout=10
        ).json()
    }
    companies = {
        c["uuid"] for c in requests.get(sm8_url(fresh.url), headers=SM8_HEADERS, timeout=10).json()
    }
    by_object = {"job": jobs, "company": companies}
    assert {f["related_object"] for f in files} == {"job", "company"}
    for f in files:
        assert f["related_object_uuid"] in by_object[f["related_object"]]
        assert f["file_type"] in {".pdf", ".jpg", ".txt"}


def test_sandbox_pages_and_filters_attachments_like_other_objects(fresh):
    files = _all(fresh.url)
    configure(fresh.url, servicem8={"page_size": 7})
    seen, cursor = [], "-1"
    while cursor:
        response = requests.get(
            sm8_url(fresh.url, "attachment.json"),
            params={"cursor": cursor, "$filter": "related_object eq 'job'"},
            headers=SM8_HEADERS,
            timeout=10,
        )
        page = response.json()
        assert len(page) <= 7
        seen += page
        cursor = response.headers.get("x-next-cursor")
    assert sorted(f["uuid"] for f in seen) == sorted(
        f["uuid"] for f in files if f["related_object"] == "job"
    )


def test_sandbox_serves_deterministic_files_with_their_type(fresh):
    by_type = {}
    for f in _all(fresh.url):
        by_type.setdefault(f["file_type"], f)
    expected_types = {".pdf": "application/pdf", ".jpg": "image/jpeg", ".txt": "text/plain"}
    for file_type, record in by_type.items():
        url = sm8_url(fresh.url, f"attachment/{record['uuid']}.file")
        first = requests.get(url, headers=SM8_HEADERS, timeout=10)
        again = requests.get(url, headers=SM8_HEADERS, timeout=10)
        assert first.status_code == 200
        assert first.headers["Content-Type"].split(";")[0] == expected_types[file_type]
        assert int(first.headers["Content-Length"]) == len(first.content) >= 1024
        assert first.content == again.content == attachment_file(record["uuid"], file_type)[0]
    assert by_type[".pdf"] and attachment_file(by_type[".pdf"]["uuid"], ".pdf")[0][:5] == b"%PDF-"


def test_sandbox_file_errors(fresh):
    file = sm8_url(fresh.url, "attachment/00000000-0000-4000-8000-000000000000.file")
    assert requests.get(file, headers=SM8_HEADERS, timeout=10).status_code == 404
    assert requests.get(file, timeout=10).status_code == 401
    bad = sm8_url(fresh.url, "attachment/not-a-uuid.file")
    assert requests.get(bad, headers=SM8_HEADERS, timeout=10).status_code == 400
    company = requests.get(sm8_url(fresh.url), headers=SM8_HEADERS, timeout=10).json()[0]["uuid"]
    not_a_file = sm8_url(fresh.url, f"company/{company}.file")
    assert requests.get(not_a_file, headers=SM8_HEADERS, timeout=10).status_code == 404


def test_sandbox_file_answers_injected_faults(fresh):
    uuid = _all(fresh.url)[0]["uuid"]
    control(
        fresh.url,
        "POST",
        "faults",
        {"queue": [{"status": 503, "path": "/servicem8/api_1.0/attachment/*.file"}]},
    )
    url = sm8_url(fresh.url, f"attachment/{uuid}.file")
    assert requests.get(url, headers=SM8_HEADERS, timeout=10).status_code == 503
    assert requests.get(url, headers=SM8_HEADERS, timeout=10).status_code == 200


def test_provider_reads_and_downloads_from_the_sandbox(fresh):
    provider = sm8(
        base_url_override=fresh.url,
        credentials={"api_key": accounts.SERVICEM8_ACCOUNT.api_key},
        config={"timezone": accounts.SERVICEM8_ACCOUNT.timezone},
    )
    raw = _all(fresh.url)
    records = list(provider.iter_records("attachments"))
    assert len(records) == sum(1 for f in raw if f["related_object"] == "job") > 0
    record = next(r for r in records if r.file_name.endswith(".jpg"))
    content = provider.attachment_download(record.provider_reference)
    body = b"".join(content.chunks)
    assert content.content_type == record.content_type == "image/jpeg"
    assert content.size == len(body)
    assert body == attachment_file(record.provider_reference, ".jpg")[0]


def test_sandbox_attachments_match_the_spec(fresh):
    """The list, one record at the spec's `/dboattachment/{uuid}.json`, and a 404, validated
    against the official OpenAPI file (the `.file` download is not in it)."""
    if not SPEC.is_file():
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"no spec at {SPEC}")
        pytest.skip(f"no spec at {SPEC}")
    openapi = OpenAPI.from_file_path(str(SPEC), config=Config(spec_validator_cls=None))
    uuid = _all(fresh.url)[0]["uuid"]
    for path, status in (
        ("attachment.json", 200),
        (f"dboattachment/{uuid}.json", 200),
        ("dboattachment/00000000-0000-4000-8000-000000000000.json", 404),
    ):
        response = requests.get(sm8_url(fresh.url, path), headers=SM8_HEADERS, timeout=10)
        assert response.status_code == status, path
        request = MockRequest(
            host_url="https://api.servicem8.com",
            method="get",
            path=f"/api_1.0/{path}",
            args=MultiDict(),
            headers=dict(response.request.headers),
        )
        spec_response = MockResponse(
            response.content,
            status_code=response.status_code,
            headers=dict(response.headers),
            content_type=response.headers.get("Content-Type", ""),
        )
        openapi.validate_request(request)
        openapi.validate_response(request, spec_response)
    # The list's own name reads one record too.
    one = requests.get(
        sm8_url(fresh.url, f"attachment/{uuid}.json"), headers=SM8_HEADERS, timeout=10
    )
    assert json.loads(one.content)["uuid"] == uuid
