"""The base of every API view.

`CompanyScopedApiMixin` authenticates the user (token or session), applies the permission
classes and the throttles, and gives the view the tenancy it works in. What a user may see
always comes from the selectors (portal.selectors, quotes.selectors); a view never builds its
own scope. As in PostHog's TeamAndOrgViewSetMixin, subclasses may not override
`get_queryset`/`get_permissions`: start from a selector instead. An object outside the user's
scope is a 404, never a 403, so ids of other tenants' objects cannot be probed.

Throttling: the per-IP throttles run *before* authentication (DRF runs every throttle after
it), so a flood of anonymous or bad-token requests is refused (429, Retry-After) without a
token lookup each, and 401s carry the X-RateLimit-* headers too; the per-user throttles run
after it, as usual. A request without an Authorization header (a session) costs no token
lookup: it is authenticated first, and a signed-in user's per-IP and per-user throttles are
then checked in one Redis round trip (per-IP first: when they refuse, the per-user ones are
not counted); anonymous and refused (401/403) requests still count against the per-IP ones.

URLs are spelled exactly as in the schema: Django's APPEND_SLASH redirect is off for these
views, so `GET /api/v1/quotes` is a JSON 404 (config/urls.py's handler404), not a 301.
"""

import ipaddress

import django_filters
from django.db import transaction
from django.db.models import QuerySet
from django.utils.functional import cached_property
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.throttling import BaseThrottle

from portal.api.pagination import ApiCursorPagination
from portal.api.throttles import RateLimitHeadersMixin, throttle_waits
from portal.selectors import (
    company_list_visible_to,
    user_scope_cache_keys,
    user_scope_prefetched,
)

FORBIDDEN_OVERRIDES = ("get_queryset", "get_permissions")
UNSAFE_HANDLERS = ("post", "put", "patch", "delete")


def _filters_only_by_parameters(filterset_class) -> bool:
    """Whether the FilterSet leaves the queryset alone when no parameter names a filter:
    django-filter's own `qs`, `filter_queryset` and form, and no filter with a default."""
    return (
        filterset_class.qs is django_filters.FilterSet.qs
        and filterset_class.filter_queryset is django_filters.FilterSet.filter_queryset
        and filterset_class.form is django_filters.FilterSet.form
        and not any(
            f.extra.get("initial") is not None for f in filterset_class.base_filters.values()
        )
    )


class CompanyScopedApiMixin(RateLimitHeadersMixin):
    permission_classes = [IsAuthenticated]
    pagination_class = ApiCursorPagination

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in FORBIDDEN_OVERRIDES:
            if name in cls.__dict__:
                raise TypeError(
                    f"{cls.__name__} overrides {name}: start from a selector instead "
                    "(or name the escape hatch dangerously_*)."
                )

    @classmethod
    def as_view(cls, **initkwargs):
        view = super().as_view(**initkwargs)
        view.should_append_slash = False  # as @no_append_slash: no 301 to the slashed path
        if cls.read_only():
            # A read-only view needs no ATOMIC_REQUESTS transaction: under READ COMMITTED each
            # statement has its own snapshot inside a transaction too, so BEGIN and COMMIT
            # would be two more round trips per request and nothing else.
            view = transaction.non_atomic_requests(view)
        return view

    @classmethod
    def read_only(cls) -> bool:
        """No handler that writes (POST, PUT, PATCH, DELETE): served outside a transaction."""
        return not any(hasattr(cls, method) for method in UNSAFE_HANDLERS)

    @property
    def runs_atomic(self) -> bool:
        """Whether the request runs in its own ATOMIC_REQUESTS transaction, which an error
        answer rolls back (portal.api.exception_handler)."""
        return not self.read_only()

    def perform_authentication(self, request) -> None:
        self._ip_phase_deferred = False
        if "HTTP_AUTHORIZATION" in request.META:
            # A token: the per-IP limits first, so a flood costs no token lookup each.
            self._check_throttles(request, phases=(True,))
            super().perform_authentication(request)
        else:
            # A session (or nobody): authenticating costs no token lookup, so a signed-in
            # user's per-IP limits wait for the per-user ones, one Redis round trip for both.
            try:
                super().perform_authentication(request)
            except Exception:
                self._check_throttles(request, phases=(True,))  # a 429 before the error
                raise
            if request.user.is_authenticated:
                self._ip_phase_deferred = True
            else:
                self._check_throttles(request, phases=(True,))
        request.user.share_scope_cache = True  # user_scope may come from the shared cache

    def check_permissions(self, request) -> None:
        try:
            super().check_permissions(request)
        except Exception:
            # Refused requests count against the per-IP limits (and carry their headers).
            if self._ip_phase_deferred:
                self._ip_phase_deferred = False
                self._check_throttles(request, phases=(True,))
            raise

    def check_throttles(self, request) -> None:
        phases = (True, False) if self._ip_phase_deferred else (False,)
        self._ip_phase_deferred = False
        self._check_throttles(request, phases=phases)

    def _check_throttles(self, request, *, phases: tuple[bool, ...]) -> None:
        """DRF's check_throttles for the phases named by their `before_authentication`, in
        order: every throttle of a phase counts the request, a later phase only if the earlier
        one allowed it; the longest wait is the Retry-After. One Redis round trip for them all
        (throttles.throttle_waits)."""
        throttles = self.get_throttles()
        phased = [
            [t for t in throttles if getattr(t, "before_authentication", False) is phase]
            for phase in phases
        ]
        user = request.user if False in phases else None  # (authenticated by now)
        reads_scope = bool(user and user.is_authenticated and not user.is_superuser)
        waits, found = throttle_waits(
            sum(phased, []),
            request,
            self,
            gate=len(phased[0]),
            # The user's scope, which the view reads next: in the same round trip.
            also_read=user_scope_cache_keys(user) if reads_scope else (),
        )
        if reads_scope and found is not None:
            user_scope_prefetched(user, found)
        if waits:
            self.throttled(request, max((w for w in waits if w is not None), default=None))

    @cached_property
    def companies(self) -> QuerySet:
        """The companies whose staff the user is (all of them for a superuser)."""
        return company_list_visible_to(user=self.request.user)

    @cached_property
    def company(self):
        """The user's company when they are staff of exactly one, else None."""
        companies = list(self.companies.order_by("pk")[:2])
        return companies[0] if len(companies) == 1 else None

    def get_visible_object(self, queryset: QuerySet, **lookup):
        """One object from a visibility-scoped queryset, or 404."""
        obj = queryset.filter(**lookup).first()
        if obj is None:
            raise NotFound()
        return obj

    def filter_queryset(self, queryset: QuerySet, filterset_class) -> QuerySet:
        """Apply a django-filter FilterSet; invalid values are a 400 with field details.

        A request that names none of the filters (a parameter whose name starts with a
        filter's: range widgets add suffixes) is not filtered, so building the FilterSet and
        its form (about a millisecond) is skipped, unless the FilterSet filters by itself."""
        names = tuple(filterset_class.base_filters)
        if (
            _filters_only_by_parameters(filterset_class)
            and names
            and not any(key.startswith(names) for key in self.request.query_params)
        ):
            return queryset
        filterset = filterset_class(
            self.request.query_params, queryset=queryset, request=self.request
        )
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        return filterset.qs

    def client_ip(self) -> str | None:
        """The caller's IP as the throttles see it (honours PORTAL_NUM_PROXIES), if it is one."""
        ident = BaseThrottle().get_ident(self.request) or ""
        try:
            return str(ipaddress.ip_address(ident.strip()))
        except ValueError:
            return None
