"""Request/correlation ids for logs: a middleware sets one per request, a filter stamps records.
And no webhook path token ever reaches a log: `/webhooks/<provider>/<id>/<token>/` carries an
integration's secret (ServiceM8 and ServiceTitan verify deliveries by it), and Django logs the
path of every 4xx/5xx (`django.request`), runserver every request (`django.server`), gunicorn
every request (its access log). `SecretPathFilter` and `config.gunicorn_logging` redact it."""

import logging
import re
import uuid
from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")

_VALID_INCOMING_ID = re.compile(r"^[A-Za-z0-9._-]{8,128}$")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


# /webhooks/<provider>/<integration id>/<token>/ -> the token replaced.
_WEBHOOK_TOKEN = re.compile(r"(/webhooks/[^/\s?#\"']+/\d+/)[^/\s?#\"']+")
REDACTED = "[redacted]"


def redact_paths(text: str) -> str:
    return _WEBHOOK_TOKEN.sub(rf"\1{REDACTED}", text) if "/webhooks/" in text else text


class SecretPathFilter(logging.Filter):
    """Render the record's message with its arguments and redact webhook path tokens."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler's error path
            return True
        redacted = redact_paths(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        # Django passes the request as `extra`; a JSON formatter writes out its repr, which
        # holds the path.
        request = getattr(record, "request", None)
        if request is not None and "/webhooks/" in getattr(request, "path", ""):
            record.request = redact_paths(repr(request))
        return True


class RequestIdMiddleware:
    """Reuse a sane incoming X-Request-ID (from a proxy) or make one; echo it on the response."""

    header = "HTTP_X_REQUEST_ID"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get(self.header, "")
        request_id = incoming if _VALID_INCOMING_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response
