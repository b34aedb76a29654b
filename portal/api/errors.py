"""Errors raised outside the API's views, in the API's error shape for paths under /api/ and
with the site's templates (404.html, 500.html) elsewhere: config/urls.py's handler404 (no URL
pattern matched) and handler500 (an exception no view handled).

The API's paths are spelled exactly as in the schema: collections and objects end in a slash
(`/api/v1/quotes/`, `/api/v1/quotes/7/`), actions and sub-resources do not
(`/api/v1/quotes/7/approve`). Any other spelling is a 404 whose message names the right one.
"""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults

from portal.api.exception_handler import error_body

API_PREFIX = "/api/"


def is_api_request(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def _other_spelling(request: HttpRequest) -> str | None:
    """The same path with the trailing slash added or removed, if that one exists."""
    path = request.path_info
    other = path.removesuffix("/") if path.endswith("/") else f"{path}/"
    try:
        resolve(other, getattr(request, "urlconf", None))
    except Resolver404:
        return None
    return request.path.removesuffix("/") if path.endswith("/") else f"{request.path}/"


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not is_api_request(request):
        return defaults.page_not_found(request, exception)
    message = "Not found."
    other = _other_spelling(request)
    if other:
        message = f"Not found. Did you mean {other}? (see the OpenAPI schema's paths)"
    return JsonResponse(error_body("not_found", message), status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if not is_api_request(request):
        return defaults.server_error(request)
    return JsonResponse(
        error_body("server_error", "A server error occurred; it has been reported."), status=500
    )
