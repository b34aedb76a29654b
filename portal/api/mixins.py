"""The base of every API view.

`CompanyScopedApiMixin` authenticates the user (token or session), applies the permission
classes and the throttles, and gives the view the tenancy it works in. What a user may see
always comes from the selectors (portal.selectors, quotes.selectors); a view never builds its
own scope. As in PostHog's TeamAndOrgViewSetMixin, subclasses may not override
`get_queryset`/`get_permissions`: start from a selector instead. An object outside the user's
scope is a 404, never a 403, so ids of other tenants' objects cannot be probed.
"""

import ipaddress

from django.db.models import QuerySet
from django.utils.functional import cached_property
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.throttling import BaseThrottle

from portal.api.pagination import ApiCursorPagination
from portal.api.throttles import RateLimitHeadersMixin
from portal.selectors import company_list_visible_to

FORBIDDEN_OVERRIDES = ("get_queryset", "get_permissions")


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
        """Apply a django-filter FilterSet; invalid values are a 400 with field details."""
        filterset = filterset_class(
            self.request.query_params, queryset=queryset, request=self.request
        )
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        return filterset.qs

    def client_ip(self) -> str | None:
        """The caller's IP as the throttles see it (honours API_NUM_PROXIES), if it is one."""
        ident = BaseThrottle().get_ident(self.request) or ""
        try:
            return str(ipaddress.ip_address(ident.strip()))
        except ValueError:
            return None
