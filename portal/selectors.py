from django.db.models import QuerySet

from portal.models import Client, Job, User


def client_list_for_user(*, user: User) -> QuerySet[Client]:
    """The clients a client user belongs to, live ones only."""
    return Client.objects.filter(memberships__user=user, remote_deleted_at__isnull=True).distinct()


def job_list_for_user(*, user: User) -> QuerySet[Job]:
    return Job.objects.filter(
        client__memberships__user=user,
        client__remote_deleted_at__isnull=True,
        remote_deleted_at__isnull=True,
    ).select_related("client")
