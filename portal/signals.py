"""Keeps the cached user scopes (portal.selectors.user_scope) honest: any change to who belongs
where bumps the scope version, so every cached scope is stale at once. Connected in
PortalConfig.ready().

The version is bumped at once (the same transaction's later reads, and tests, see the change)
and again on commit: a scope read by another request between the write and the commit (the
old memberships) was cached under the first bump's version, which the second one retires.
Bulk writes (`QuerySet.update`, `bulk_create`) send no signals: call
`selectors.user_scope_invalidate()` after them.
"""

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from portal.models import ClientMembership, TeamMembership
from portal.selectors import user_scope_invalidate


def _membership_changed(sender, **kwargs) -> None:
    user_scope_invalidate()
    transaction.on_commit(user_scope_invalidate)


def _integration_saved(sender, created: bool, update_fields=None, **kwargs) -> None:
    # Syncs save integrations often (cursors, timestamps): only a new one or a (possible)
    # change of company changes anyone's scope.
    if created or update_fields is None or {"company", "company_id"} & set(update_fields):
        _membership_changed(sender)


def connect() -> None:
    from integrations.models import Integration

    for model in (ClientMembership, TeamMembership):
        post_save.connect(_membership_changed, sender=model, dispatch_uid=f"scope-{model.__name__}")
        post_delete.connect(
            _membership_changed, sender=model, dispatch_uid=f"scope-del-{model.__name__}"
        )
    post_save.connect(_integration_saved, sender=Integration, dispatch_uid="scope-Integration")
    post_delete.connect(
        _membership_changed, sender=Integration, dispatch_uid="scope-del-Integration"
    )
