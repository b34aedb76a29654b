"""openapi-core ignores query parameters an operation does not declare: a request with a
misspelt or invented filter (`modifiedSince`, `active=Any` where there is no `active`)
validates. `assert_query_declared` closes that gap: every query parameter name of the request
must be declared by the matched operation (its own `parameters` plus its path item's, `$ref`s
resolved). Call it beside `openapi.validate_request(request)`."""

from __future__ import annotations

from openapi_core import OpenAPI
from openapi_core.templating.paths.finders import APICallPathFinder


def declared_query_names(openapi: OpenAPI, request) -> set[str]:
    """The query parameter names the operation matching `request` declares."""
    url = getattr(request, "full_url_pattern", None) or request.host_url + request.path
    found = APICallPathFinder(openapi.spec).find(request.method.lower(), url)
    names: set[str] = set()
    for owner in (found.path, found.operation):
        if "parameters" not in owner:
            continue
        for parameter in owner / "parameters":
            with parameter.resolve() as resolved:
                contents = resolved.contents
            if contents.get("in") == "query":
                names.add(contents["name"])
    return names


def assert_query_declared(openapi: OpenAPI, request) -> None:
    """Fail when the request carries a query parameter its operation does not declare."""
    sent = set(request.parameters.query.keys())
    undeclared = sent - declared_query_names(openapi, request)
    assert not undeclared, (
        f"{request.method.upper()} {request.path}: query parameters not declared by the "
        f"operation: {sorted(undeclared)}"
    )
