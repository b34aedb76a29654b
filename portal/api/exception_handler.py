"""One error format for the whole API:

    {"error": {"code": "invalid", "message": "…", "fields": {"status": ["…"]}}}

`fields` is empty unless the error concerns particular inputs. Bad input is 400, missing or
invisible objects 404, a conflict with the object's state 409, a well-formed request the domain
refuses 422, too many requests 429 (with Retry-After). Anything else is a bug: a 500 with no
detail, reported as usual.

Domain errors may carry their own status: an exception with `api_status` (an int) and `code`
(and optionally `field`) is rendered with that status, so an app maps its error codes to
statuses without this module knowing about it (see `ApiDomainError`).
"""

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import set_rollback

NON_FIELD = "non_field_errors"


class ApiDomainError(Exception):
    """Raise from an API view to answer with `status` and this code, message and field."""

    def __init__(self, message: str, *, code: str, api_status: int, field: str | None = None):
        super().__init__(message)
        self.message, self.code, self.api_status, self.field = message, code, api_status, field


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten(detail) -> dict[str, list[str]]:
    """DRF's nested error detail as {field: [messages]} ("items.0.id" for nested ones)."""
    out: dict[str, list[str]] = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), sub)
        elif isinstance(value, list):
            if all(not isinstance(v, dict | list) for v in value):
                out.setdefault(prefix or NON_FIELD, []).extend(str(v) for v in value)
            else:
                for index, sub in enumerate(value):
                    walk(f"{prefix}.{index}" if prefix else str(index), sub)
        else:
            out.setdefault(prefix or NON_FIELD, []).append(str(value))

    walk("", detail)
    return out


def _first_code(detail) -> str | None:
    if isinstance(detail, dict):
        for sub in detail.values():
            return _first_code(sub)
    if isinstance(detail, list) and detail:
        return _first_code(detail[0])
    return getattr(detail, "code", None)


def _set_rollback(context) -> None:
    """DRF's set_rollback (roll the request's transaction back), unless the view runs outside
    one (a read-only view, portal.api.mixins): an enclosing atomic block (a test's) is not the
    request's to roll back."""
    if getattr(context.get("view"), "runs_atomic", True):
        set_rollback()


def api_exception_handler(exc, context):
    if isinstance(exc, ApiDomainError) or (
        isinstance(getattr(exc, "api_status", None), int) and getattr(exc, "code", None)
    ):
        _set_rollback(context)
        message = getattr(exc, "message", None) or str(exc)
        if isinstance(exc, DjangoValidationError):
            message = exc.messages[0]
        field = getattr(exc, "field", None)
        return Response(
            error_body(exc.code, message, {field: [message]} if field else None),
            status=exc.api_status,
        )
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404 | ObjectDoesNotExist):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
    _set_rollback(context)

    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        code = _first_code(exc.detail) or "invalid"
        message = "Some of the input is not valid; see `fields`."
        if list(fields) == [NON_FIELD]:
            message = fields[NON_FIELD][0]
        return Response(
            error_body(code if code != "invalid" else "invalid", message, fields),
            status=status.HTTP_400_BAD_REQUEST,
            headers=headers,
        )
    detail = exc.detail
    message = str(detail) if not isinstance(detail, dict | list) else exc.default_detail
    code = getattr(detail, "code", None) or exc.default_code
    return Response(error_body(str(code), str(message)), status=exc.status_code, headers=headers)
