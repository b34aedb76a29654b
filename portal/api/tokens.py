"""API tokens: `fb_<prefix>_<secret>`. The prefix finds the row; only the SHA-256 of the whole
token is stored and compared (in constant time)."""

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from portal.models import ApiToken, User

TOKEN_PREFIX_BYTES = 6
LAST_USED_RESOLUTION = timedelta(minutes=5)


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_token_create(
    *, user: User, name: str, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Returns the token row and the plain token, which is never stored and cannot be shown
    again."""
    prefix = secrets.token_hex(TOKEN_PREFIX_BYTES)
    raw = f"fb_{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=prefix,
        digest=_digest(raw),
        expires_at=expires_at or timezone.now() + timedelta(days=settings.API_TOKEN_DEFAULT_DAYS),
    )
    return token, raw


def api_token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def api_token_authenticate(*, raw: str, now: datetime) -> ApiToken | None:
    """The live token of an active user matching `raw`, or None."""
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != "fb" or len(parts[1]) != 2 * TOKEN_PREFIX_BYTES:
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(prefix=parts[1], revoked_at__isnull=True, expires_at__gt=now)
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    if not hmac.compare_digest(token.digest, _digest(raw)):
        return None
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        # Coarse, so a busy consumer does not write a row on every request.
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
