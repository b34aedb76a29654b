"""OpenAPI schema helpers: the shared error responses and rate-limit headers, added to every
operation by a drf-spectacular post-processing hook, so views only declare what is special
to them (e.g. 409/422 on a quote decision, as an `error_response(...)`)."""

import inspect

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse

from portal.api.filters import MAX_ID

NESTED_NAMES = {"InputSerializer", "OutputSerializer", "FilterSerializer"}
ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error response has this shape.",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "description": "What went wrong.",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {
                    "type": "string",
                    "description": "A stable, machine-readable code (e.g. invalid, not_found, "
                    "already_decided, throttled).",
                },
                "message": {"type": "string", "description": "A human-readable explanation."},
                "fields": {
                    "type": "object",
                    "description": "Messages per input field at fault (empty when none).",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
        }
    },
}
COMMON_ERRORS = {
    "400": "Invalid input (query parameters or body); see `error.fields`.",
    "401": "Not authenticated, or the API token is invalid, revoked or expired.",
    "403": "Authenticated but not allowed (e.g. a session request without its CSRF token).",
    "404": "No such object, or not one the caller may see.",
    "429": "Too many requests; retry after `Retry-After` seconds.",
}
RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": "Requests allowed in the current window (the tightest limit).",
    "X-RateLimit-Remaining": "Requests left in the current window.",
    "X-RateLimit-Reset": "Seconds until a request slot frees up.",
}


class ApiAutoSchema(AutoSchema):
    """Describes an operation by its handler's or its own view's docstring only, never by a
    docstring inherited from the API mixins."""

    def get_description(self):
        handler = getattr(self.view, self.method.lower(), None)
        doc = getattr(handler, "__doc__", None) or type(self.view).__dict__.get("__doc__")
        return inspect.cleandoc(doc) if doc else ""

    def get_serializer_name(self, serializer, direction):
        """Nested `InputSerializer`/`OutputSerializer`/`FilterSerializer` classes (one per API,
        by the style guide) are named after their view: `QuoteApproveApi.InputSerializer`
        becomes the component `QuoteApproveInput`, so they never collide."""
        cls = type(serializer)
        if cls.__name__ in NESTED_NAMES and "." in cls.__qualname__:
            outer = cls.__qualname__.split(".")[-2].lstrip("_").removesuffix("Api")
            return outer + cls.__name__
        return super().get_serializer_name(serializer, direction)


def error_response(description: str) -> OpenApiResponse:
    """An error response for `extend_schema(responses=…)`; its body is filled in by the hook."""
    return OpenApiResponse(description=description)


def _header(description: str) -> dict:
    return {"schema": {"type": "integer"}, "description": description}


def add_error_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            for param in operation.get("parameters", []):
                if param.get("in") == "path" and param["schema"].get("type") == "integer":
                    param["schema"].update({"minimum": 1, "maximum": MAX_ID})
                    param.setdefault("description", "The object's id.")
            responses = operation.setdefault("responses", {})
            for code, response in responses.items():
                if code.startswith("2"):
                    headers = response.setdefault("headers", {})
                    for name, description in RATE_LIMIT_HEADERS.items():
                        headers.setdefault(name, _header(description))
            for code, description in COMMON_ERRORS.items():
                responses.setdefault(code, {"description": description})
            for code, response in responses.items():
                if code[0] in "45" and "content" not in response:
                    response["content"] = {"application/json": {"schema": ERROR_REF}}
                if code == "429":
                    response.setdefault("headers", {})["Retry-After"] = _header(
                        "Seconds to wait before retrying."
                    )
    return result
