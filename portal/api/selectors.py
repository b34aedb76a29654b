"""Visibility of the synced records the portal's pages do not list (contacts, staff), built
on `portal.selectors.visibility_q` like every other scope. TODO(#9): move next to the other
selectors in portal/selectors.py once that file is free."""

from django.db.models import QuerySet

from portal.models import Contact, Staff, User
from portal.selectors import visibility_q


def contact_list_visible_to(*, user: User) -> QuerySet[Contact]:
    """Live contacts of live clients the user may see."""
    contacts = Contact.objects.filter(remote_deleted_at__isnull=True).exclude(
        client__remote_deleted_at__isnull=False
    )
    scope = visibility_q(user, client_field="client_id")
    return contacts if scope is None else contacts.filter(scope)


def staff_list_visible_to(*, user: User) -> QuerySet[Staff]:
    """Live staff of the user's companies: the business's people are not a client's to list."""
    staff = Staff.objects.filter(remote_deleted_at__isnull=True)
    scope = visibility_q(user, client_field=None)
    return staff if scope is None else staff.filter(scope)
