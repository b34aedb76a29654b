"""Attachment downloads through the portal (issue #7): tenancy, headers, provider failures, and
end to end against the sandbox (sync, then download as the client user)."""

from __future__ import annotations

import pytest
import requests
import responses
from django.urls import reverse

from integrations.models import Integration
from integrations.sandbox import accounts
from integrations.sandbox.servicem8 import attachment_file
from portal.attachments import safe_content_type, safe_filename
from portal.models import Attachment, Job
from sync.engine import sync_entity
from sync.models import SyncError
from tests import factories
from tests.sync.conftest import sandbox, sandbox_clean, sm8_integration  # noqa: F401

ROOT = "https://sm8.example.test"
UUID = "0b7e6f2a-9c13-4e58-a1d4-7f2e8b6c5a90"
FILE_URL = f"{ROOT}/servicem8/api_1.0/attachment/{UUID}.file"
BODY = b"%PDF-1.4\n" + bytes(range(256)) * 400


def url(attachment: Attachment, job: Job | None = None) -> str:
    return reverse("portal:job-attachment", args=[(job or attachment.job).pk, attachment.pk])


def make_attachment(job: Job, **extra) -> Attachment:
    fields = {
        "integration": job.integration,
        "job": job,
        "external_id": extra.get("provider_reference", UUID),
        "file_name": "Quote 1017.pdf",
        "content_type": "application/pdf",
        "provider_reference": UUID,
        **extra,
    }
    return Attachment.objects.create(**fields)


@pytest.fixture
def member(db):
    integration = factories.IntegrationFactory(
        base_url_override=ROOT, config={"timezone": "Australia/Sydney"}
    )
    client = factories.ClientFactory(integration=integration)
    return factories.ClientMembershipFactory(client=client)


@pytest.fixture
def job(member):
    return factories.JobFactory(integration=member.client.integration, client=member.client)


@pytest.fixture
def attachment(job):
    return make_attachment(job)


def file_response(**extra):
    kwargs = {
        "body": BODY,
        "content_type": "application/pdf",
        "headers": {"Content-Length": str(len(BODY))},
        **extra,
    }
    return responses.get(FILE_URL, **kwargs)


# --- the happy path --------------------------------------------------------------------------


@responses.activate
def test_a_client_user_downloads_their_jobs_attachment(client, member, attachment):
    file_response()
    client.force_login(member.user)
    response = client.get(url(attachment))
    assert response.status_code == 200
    assert response.streaming
    assert b"".join(response.streaming_content) == BODY
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Length"] == str(len(BODY))
    assert response["Content-Disposition"] == 'attachment; filename="Quote 1017.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "private" in response["Cache-Control"]
    assert "Location" not in response
    # The provider was asked with the integration's key, in a header.
    (call,) = responses.calls
    assert call.request.headers["X-Api-Key"] == "smk-test-0000"
    assert "smk-test-0000" not in call.request.url


@responses.activate
def test_the_company_team_may_download_too(client, attachment):
    file_response()
    team = factories.TeamMembershipFactory(company=attachment.integration.company)
    client.force_login(team.user)
    assert client.get(url(attachment)).status_code == 200


@responses.activate
def test_the_job_page_links_each_live_attachment(client, member, job, attachment):
    gone = make_attachment(job, provider_reference="9d1c0e3b-6a7f-4b25-8e94-3f0a2c1d7b68")
    Attachment.objects.filter(pk=gone.pk).update(remote_deleted_at="2025-01-01T00:00Z")
    client.force_login(member.user)
    page = client.get(reverse("portal:job-detail", args=[job.pk])).content.decode()
    assert f'href="{url(attachment)}"' in page
    assert url(gone) not in page
    assert ROOT not in page  # never a provider URL


# --- tenancy ---------------------------------------------------------------------------------


@responses.activate
def test_another_clients_attachment_is_404(client, member, job, attachment):
    other = factories.ClientMembershipFactory(
        client=factories.ClientFactory(integration=member.client.integration)
    )
    their_job = factories.JobFactory(integration=other.client.integration, client=other.client)
    theirs = make_attachment(their_job, provider_reference="9d1c0e3b-6a7f-4b25-8e94-3f0a2c1d7b68")
    client.force_login(member.user)
    # Their job, their attachment; and their attachment under my job (the URL's job must own it).
    assert client.get(url(theirs)).status_code == 404
    assert client.get(url(theirs, job=job)).status_code == 404
    # Mine under their job.
    assert client.get(url(attachment, job=their_job)).status_code == 404
    assert len(responses.calls) == 0  # the provider was never asked


@responses.activate
def test_another_companys_team_gets_404(client, attachment):
    stranger = factories.TeamMembershipFactory()
    client.force_login(stranger.user)
    assert client.get(url(attachment)).status_code == 404
    assert len(responses.calls) == 0


@responses.activate
def test_deleted_attachments_and_jobs_are_404(client, member, job, attachment):
    client.force_login(member.user)
    Attachment.objects.filter(pk=attachment.pk).update(remote_deleted_at="2025-01-01T00:00Z")
    assert client.get(url(attachment)).status_code == 404
    Attachment.objects.filter(pk=attachment.pk).update(remote_deleted_at=None)
    Job.objects.filter(pk=job.pk).update(remote_deleted_at="2025-01-01T00:00Z")
    assert client.get(url(attachment)).status_code == 404
    assert client.get(reverse("portal:job-attachment", args=[job.pk, 999999])).status_code == 404
    assert len(responses.calls) == 0


@responses.activate
def test_anonymous_users_are_sent_to_sign_in(client, attachment):
    response = client.get(url(attachment))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:login"))
    assert len(responses.calls) == 0


@responses.activate
def test_only_get_and_head(client, member, attachment):
    client.force_login(member.user)
    assert client.post(url(attachment)).status_code == 405


# --- provider failures -----------------------------------------------------------------------


@responses.activate
def test_a_provider_failure_is_a_designed_503_not_a_500(client, member, attachment):
    responses.get(FILE_URL, status=403, json={"errorCode": 403, "message": "Access forbidden."})
    client.force_login(member.user)
    response = client.get(url(attachment))
    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    page = response.content.decode()
    assert "cannot be downloaded right now" in page
    assert "Quote 1017.pdf" in page
    assert reverse("portal:job-detail", args=[attachment.job.pk]) in page
    assert "Access forbidden" not in page and ROOT not in page


@responses.activate
def test_a_file_the_provider_no_longer_has_is_a_designed_404(client, member, attachment):
    responses.get(FILE_URL, status=404, json={"errorCode": 404, "message": "Not found."})
    client.force_login(member.user)
    response = client.get(url(attachment))
    assert response.status_code == 404
    assert "no longer available" in response.content.decode()


@responses.activate
@pytest.mark.parametrize(
    "change",
    [
        {"enabled": False},
        {"status": Integration.Status.NEEDS_REAUTH},
        {"status": Integration.Status.DISABLED},
    ],
)
def test_an_unusable_integration_is_503_without_calling_the_provider(
    client, member, attachment, change
):
    Integration.objects.filter(pk=attachment.integration_id).update(**change)
    client.force_login(member.user)
    assert client.get(url(attachment)).status_code == 503
    assert len(responses.calls) == 0


@responses.activate
def test_an_attachment_without_a_reference_is_unavailable(client, member, job):
    nothing = make_attachment(job, provider_reference="", external_id="no-ref")
    client.force_login(member.user)
    assert client.get(url(nothing)).status_code == 503
    assert len(responses.calls) == 0


# --- names and types -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Quote 1017.pdf", "Quote 1017.pdf"),
        ("../../etc/passwd", "_.._etc_passwd"),
        ("a\\b.pdf", "a_b.pdf"),
        ("bad\r\nSet-Cookie: x=1.pdf", "bad Set-Cookie: x=1.pdf"),
        ("tab\there\x00.txt", "tab here .txt"),
        ("...hidden", "hidden"),
        ("   ", "attachment"),
        ("", "attachment"),
        ("\u202egpj.exe", "gpj.exe"),
        ("x" * 300 + ".pdf", "x" * 146 + ".pdf"),
    ],
)
def test_safe_filename(name, expected):
    assert safe_filename(name) == expected


def test_safe_content_type():
    assert safe_content_type("image/jpeg", "application/pdf") == "image/jpeg"
    assert safe_content_type("text/plain; charset=utf-8") == "text/plain; charset=utf-8"
    assert safe_content_type("text/html\r\nX: y", "application/pdf") == "application/pdf"
    assert safe_content_type("", None) == "application/octet-stream"
    assert safe_content_type("nonsense") == "application/octet-stream"


@responses.activate
def test_unicode_and_hostile_names_make_safe_headers(client, member, job):
    hostile = make_attachment(job, file_name='Devis "été"\r\n../x.pdf')
    file_response(content_type="application/pdf\r\nX-Evil: 1")
    client.force_login(member.user)
    response = client.get(url(hostile))
    assert response.status_code == 200
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment; filename*=utf-8''")
    assert "\r" not in disposition and "\n" not in disposition and "/" not in disposition
    # A malformed provider type falls back to the synced one.
    assert response["Content-Type"] == "application/pdf"
    b"".join(response.streaming_content)


# --- end to end against the sandbox ----------------------------------------------------------


def sync_all(integration, *entities):
    for entity in entities:
        run = sync_entity(integration_id=integration.pk, entity=entity, mode="full")
        assert run.status == "success", (entity, run.error_summary)


@pytest.mark.django_db(transaction=True)
def test_sync_then_download_through_the_portal(client, sm8_integration, sandbox_clean):  # noqa: F811
    sync_all(sm8_integration, "clients", "jobs", "attachments")
    listed = requests.get(
        f"{sandbox_clean.url}/servicem8/api_1.0/attachment.json",
        headers={"X-Api-Key": accounts.SERVICEM8_ACCOUNT.api_key},
        timeout=10,
    ).json()
    on_jobs = {a["uuid"]: a for a in listed if a["related_object"] == "job"}
    assert len(on_jobs) < len(listed)  # some are on clients: skipped, not errors
    synced = Attachment.objects.filter(integration=sm8_integration)
    assert set(synced.values_list("external_id", flat=True)) == set(on_jobs)
    assert not SyncError.objects.filter(integration=sm8_integration).exists()
    deleted = {u for u, a in on_jobs.items() if str(a["active"]) == "0"}
    assert (
        set(synced.filter(remote_deleted_at__isnull=False).values_list("external_id", flat=True))
        == deleted
    )

    # One live file on a live job, downloaded as that job's client user.
    attachment = (
        synced.filter(
            remote_deleted_at__isnull=True,
            job__remote_deleted_at__isnull=True,
            job__client__remote_deleted_at__isnull=True,
            file_name__endswith=".jpg",
        )
        .select_related("job__client")
        .first()
    )
    assert attachment is not None
    assert attachment.job.external_id == on_jobs[attachment.external_id]["related_object_uuid"]
    member = factories.ClientMembershipFactory(client=attachment.job.client)
    direct = requests.get(
        f"{sandbox_clean.url}/servicem8/api_1.0/attachment/{attachment.provider_reference}.file",
        headers={"X-Api-Key": accounts.SERVICEM8_ACCOUNT.api_key},
        timeout=10,
    )
    client.force_login(member.user)
    response = client.get(url(attachment))
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert body == direct.content == attachment_file(attachment.provider_reference, ".jpg")[0]
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Length"] == str(len(body))
    assert response["Content-Disposition"] == f'attachment; filename="{attachment.file_name}"'

    # Another client's file, from the same sync: 404, whichever job the URL names.
    theirs = (
        synced.filter(remote_deleted_at__isnull=True, job__remote_deleted_at__isnull=True)
        .exclude(job__client=attachment.job.client)
        .first()
    )
    assert client.get(url(theirs)).status_code == 404
    assert client.get(url(theirs, job=attachment.job)).status_code == 404

    # The sandbox failing the download: the designed page, then it works again.
    requests.post(
        f"{sandbox_clean.url}/_sandbox/faults",
        json={"queue": [{"status": 500, "path": "/servicem8/api_1.0/attachment/*.file"}] * 3},
        timeout=10,
    ).raise_for_status()
    failed = client.get(url(attachment))
    assert failed.status_code == 503
    assert "cannot be downloaded right now" in failed.content.decode()
    again = client.get(url(attachment))
    assert again.status_code == 200 and b"".join(again.streaming_content) == body


@pytest.mark.django_db(transaction=True)
def test_a_resync_sees_deleted_attachments(sm8_integration, sandbox_clean):  # noqa: F811
    sync_all(sm8_integration, "clients", "jobs", "attachments")
    live = Attachment.objects.filter(
        integration=sm8_integration, remote_deleted_at__isnull=True
    ).first()
    requests.delete(
        f"{sandbox_clean.url}/_sandbox/records/servicem8/attachment/{live.external_id}", timeout=10
    ).raise_for_status()
    run = sync_entity(integration_id=sm8_integration.pk, entity="attachments", mode="incremental")
    assert run.status == "success"
    live.refresh_from_db()
    assert live.remote_deleted_at is not None
