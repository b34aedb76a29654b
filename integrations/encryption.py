"""Encryption at rest for credentials: Fernet (AES-128-CBC + HMAC-SHA256) through
cryptography's MultiFernet, so keys can be rotated.

FIELD_ENCRYPTION_KEYS lists Fernet keys, newest first. New values are encrypted with the first
key; every key in the list can decrypt. To rotate: put a new key first, keep the old one after it,
run `manage.py rotate_encryption_keys` (which re-encrypts every row with the new key), then drop
the old key.
"""

import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.db.models.functions import Cast


class DecryptionError(Exception):
    """A stored value cannot be decrypted with any configured key."""


@lru_cache(maxsize=8)
def _multifernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: no key to encrypt with")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key "
            "(32 url-safe base64-encoded bytes)"
        ) from exc


def get_fernet() -> MultiFernet:
    return _multifernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt_json(value: Any) -> str:
    return get_fernet().encrypt(json.dumps(value, sort_keys=True).encode()).decode()


def decrypt_json(token: str) -> Any:
    try:
        return json.loads(get_fernet().decrypt(token.encode()))
    except InvalidToken as exc:
        raise DecryptionError(
            "A stored secret cannot be decrypted with FIELD_ENCRYPTION_KEYS; "
            "was the key that encrypted it removed?"
        ) from exc


class UnreadableSecret:
    """What an encrypted column holds when no configured key can decrypt it. Loading the row
    still works (lists, health pages and admin screens keep running); using the value raises
    DecryptionError; saving writes the original token back untouched."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return "<UnreadableSecret>"

    def _refuse(self, *args, **kwargs):
        raise DecryptionError(
            "These credentials cannot be decrypted with FIELD_ENCRYPTION_KEYS; "
            "restore the old key or enter the credentials again"
        )

    __getitem__ = __iter__ = __len__ = get = keys = items = values = _refuse


class EncryptedJSONField(models.TextField):
    """A JSON value stored as a Fernet token. The column never holds plaintext; lookups on it
    are meaningless (encryption is randomised), and serialisation (dumpdata) emits the token."""

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        try:
            return decrypt_json(value)
        except DecryptionError:
            return UnreadableSecret(value)

    def to_python(self, value):
        if isinstance(value, str) and value.startswith("gAAAAA"):
            return decrypt_json(value)
        return value

    def get_prep_value(self, value):
        if value is None:
            return None
        if isinstance(value, UnreadableSecret):
            return value.token
        return encrypt_json(value)

    def value_to_string(self, obj):
        return self.get_prep_value(self.value_from_object(obj))

    def formfield(self, **kwargs):
        # Secrets are never rendered into forms; admin forms use their own write-only field.
        return None


def encrypted_fields() -> list[tuple[type[models.Model], str]]:
    return [
        (model, field.attname)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedJSONField)
    ]


def encryption_keys_rotate(*, batch_size: int = 500) -> int:
    """Re-encrypt every encrypted column with the first key. Returns the number of values
    rewritten. Reads the raw tokens, so no plaintext is ever built in bulk."""
    fernet = get_fernet()
    rewritten = 0
    for model, attname in encrypted_fields():
        pks = list(
            model.objects.exclude(**{f"{attname}__isnull": True}).values_list("pk", flat=True)
        )
        for start in range(0, len(pks), batch_size):
            with transaction.atomic():
                rows = (
                    model.objects.filter(pk__in=pks[start : start + batch_size])
                    .select_for_update()
                    # Cast to a plain text field so the raw token is read, not decrypted.
                    .annotate(_token=Cast(attname, output_field=models.TextField()))
                    .values_list("pk", "_token")
                )
                for pk, token in rows:
                    new = fernet.rotate(token.encode()).decode()
                    model.objects.filter(pk=pk).update(**{attname: models.Value(new)})
                    rewritten += 1
    return rewritten
