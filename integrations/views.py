"""OAuth authorization-code "Connect": start (POST from the integration's admin page) and the
provider's callback.

The `state` is 32 random bytes kept in the person's session with the integration it is for,
used once, and valid for INTEGRATION_OAUTH_STATE_MAX_AGE seconds; a callback whose state is
unknown, used or expired gets 400 and changes nothing. Both views apply the integration
admin's own permission rule (the person must be able to change that integration), and the
code exchange and token storage are `integrations.services.integration_oauth_complete`.
"""

from __future__ import annotations

import hmac
import secrets
import time

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from integrations.admin import get_integration_or_404
from integrations.exceptions import ProviderError
from integrations.services import integration_oauth_authorize_url, integration_oauth_complete
from portal.admin import request_ip

SESSION_KEY = "integrations:oauth_states"


def _change_url(integration_id: int) -> str:
    return reverse("admin:integrations_integration_change", args=[integration_id])


def _redirect_uri(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("integrations:oauth-callback"))


def _live_states(request: HttpRequest) -> dict[str, dict]:
    now = time.time()
    max_age = settings.INTEGRATION_OAUTH_STATE_MAX_AGE
    states = request.session.get(SESSION_KEY) or {}
    return {k: v for k, v in states.items() if now - float(v.get("created", 0)) < max_age}


def _pop_state(request: HttpRequest, state: str) -> dict | None:
    states = _live_states(request)
    found = None
    for key in list(states):
        if hmac.compare_digest(key.encode(), state.encode()):
            found = states.pop(key)
    request.session[SESSION_KEY] = states
    return found


@staff_member_required
@require_POST
def oauth_connect(request: HttpRequest, integration_id: int) -> HttpResponse:
    integration = get_integration_or_404(request, integration_id)
    state = secrets.token_urlsafe(32)
    try:
        url = integration_oauth_authorize_url(
            integration=integration, redirect_uri=_redirect_uri(request), state=state
        )
    except ProviderError as exc:
        messages.error(request, str(exc))
        return HttpResponseRedirect(_change_url(integration.pk))
    states = _live_states(request)
    states[state] = {"integration_id": integration.pk, "created": time.time()}
    request.session[SESSION_KEY] = states
    return HttpResponseRedirect(url)


@staff_member_required
@require_GET
def oauth_callback(request: HttpRequest) -> HttpResponse:
    entry = _pop_state(request, request.GET.get("state", ""))
    if entry is None:
        return HttpResponseBadRequest(
            "This connection attempt is unknown or has expired. Start again with “Connect” on "
            "the integration's page."
        )
    integration = get_integration_or_404(request, entry["integration_id"])
    error = request.GET.get("error")
    if error:
        messages.error(
            request,
            f"{integration.get_provider_display()} did not grant access ({error[:100]}). "
            "Nothing was changed.",
        )
        return HttpResponseRedirect(_change_url(integration.pk))
    code = request.GET.get("code", "")
    if not code:
        return HttpResponseBadRequest("The provider sent no authorization code.")
    try:
        integration_oauth_complete(
            integration=integration,
            code=code,
            redirect_uri=_redirect_uri(request),
            actor=request.user,
            ip_address=request_ip(request),
        )
    except ProviderError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Connected to {integration.get_provider_display()}. Press “Test connection” to "
            "check the account.",
        )
    return HttpResponseRedirect(_change_url(integration.pk))
