from django.urls import include, path

from portal import apis


def _entity(prefix: str, namespace: str, list_view, detail_view):
    return path(
        prefix,
        include(
            (
                [
                    path("", list_view.as_view(), name="list"),
                    path("<int:pk>/", detail_view.as_view(), name="detail"),
                ],
                namespace,
            )
        ),
    )


urlpatterns = [
    _entity("companies/", "companies", apis.CompanyListApi, apis.CompanyDetailApi),
    _entity("clients/", "clients", apis.ClientListApi, apis.ClientDetailApi),
    _entity("contacts/", "contacts", apis.ContactListApi, apis.ContactDetailApi),
    _entity("staff/", "staff", apis.StaffListApi, apis.StaffDetailApi),
    _entity("jobs/", "jobs", apis.JobListApi, apis.JobDetailApi),
]
