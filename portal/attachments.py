"""Attachment downloads (issue #7): the portal streams a job's file from the provider.

The bytes never leave the provider's API except through this view: a provider's file URL can
carry credentials (or grant access to anyone holding it), so the portal never redirects to one
and never shows one. The job is looked up through `job_list_visible_to` (the one tenancy rule),
then the attachment among that job's live ones: anything the user may not see, a deleted
attachment or one of another job is a 404, indistinguishable from one that does not exist.

A provider that cannot serve the file (down, rate-limiting, credentials refused, file gone)
gets the designed "unavailable" page (503, or 404 when the provider no longer has the file),
never a 500. Once the first bytes are sent the status cannot change: a transfer that breaks
off half way ends the response early, and the browser reports the download as failed.

Reading from a provider is what `integrations` is for; the portal calls it for reads only, as
here (writes still go through the outbox).
"""

from __future__ import annotations

import logging
import re
import unicodedata

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_safe

from portal.models import Attachment
from portal.selectors import job_list_visible_to

logger = logging.getLogger("portal.attachments")

FALLBACK_NAME = "attachment"
MAX_NAME_LENGTH = 150
FALLBACK_CONTENT_TYPE = "application/octet-stream"
# type/subtype, with at most a charset: anything else (a provider's odd header) is dropped.
_CONTENT_TYPE = re.compile(
    r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*"
    r"(; ?charset=[a-z0-9_.:-]+)?$",
    re.IGNORECASE,
)


def safe_filename(name: str) -> str:
    """A file name a browser can save as is: no directories, control or format characters
    (CR/LF would split the header), leading dots or trailing spaces, at most 150 characters
    with the extension kept; "attachment" when nothing is left."""
    text = unicodedata.normalize("NFC", name or "")
    text = text.replace("/", "_").replace("\\", "_")
    text = "".join(" " if unicodedata.category(c)[0] in "CZ" and c != " " else c for c in text)
    text = " ".join(text.split()).strip(" .")
    if len(text) > MAX_NAME_LENGTH:
        stem, dot, ext = text.rpartition(".")
        if dot and 0 < len(ext) <= 16 and stem:
            text = f"{stem[: MAX_NAME_LENGTH - len(ext) - 1].rstrip(' .')}.{ext}"
        else:
            text = text[:MAX_NAME_LENGTH].rstrip(" .")
    return text or FALLBACK_NAME


def safe_content_type(*candidates: str | None) -> str:
    """The first well-formed MIME type of `candidates` (the provider's header, then the
    synced metadata), else application/octet-stream."""
    for candidate in candidates:
        text = (candidate or "").strip()
        if _CONTENT_TYPE.match(text):
            return text
    return FALLBACK_CONTENT_TYPE


def _unavailable(request: HttpRequest, attachment: Attachment, *, status: int) -> HttpResponse:
    response = render(
        request,
        "portal/attachment_unavailable.html",
        {"attachment": attachment, "job": attachment.job, "gone": status == 404},
        status=status,
    )
    if status == 503:
        response["Retry-After"] = "60"
    return response


# The view reads two rows and then waits on the provider: no transaction held open meanwhile
# (ATOMIC_REQUESTS would otherwise keep one for the whole download).
@transaction.non_atomic_requests
@login_required
@require_safe
def download(request: HttpRequest, job_pk: int, pk: int) -> HttpResponse:
    from integrations.encryption import DecryptionError
    from integrations.exceptions import ProviderError, ProviderNotFoundError, UnknownProvider
    from integrations.models import Integration
    from integrations.services import provider_for

    job = job_list_visible_to(user=request.user).filter(pk=job_pk).first()
    if job is None:
        raise Http404("No such job")
    attachment = (
        Attachment.objects.filter(
            pk=pk,
            job=job,
            integration_id=job.integration_id,
            remote_deleted_at__isnull=True,
        )
        .select_related("integration__company")
        .first()
    )
    if attachment is None:
        raise Http404("No such attachment")
    attachment.job = job
    integration = attachment.integration
    if (
        not attachment.provider_reference
        or not integration.enabled
        or integration.status != Integration.Status.ACTIVE
    ):
        return _unavailable(request, attachment, status=503)
    try:
        content = provider_for(integration).attachment_download(attachment.provider_reference)
    except ProviderNotFoundError:
        return _unavailable(request, attachment, status=404)
    except (ProviderError, DecryptionError, UnknownProvider) as exc:
        logger.warning(
            "attachment download failed",
            extra={
                "integration_id": integration.pk,
                "attachment_id": attachment.pk,
                "error": type(exc).__name__,
                "detail": str(exc)[:300],
            },
        )
        return _unavailable(request, attachment, status=503)
    response = StreamingHttpResponse(
        content.chunks,
        content_type=safe_content_type(content.content_type, attachment.content_type),
    )
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=safe_filename(attachment.file_name)
    )
    if content.size is not None:
        response["Content-Length"] = str(content.size)
    response["X-Content-Type-Options"] = "nosniff"
    # The user's own copy only: never kept by a shared cache.
    response["Cache-Control"] = "private, no-cache"
    return response
