"""/api/v1/integrations/{id}/…: sync control (included from config/api_urls.py)."""

from django.urls import path

from sync import apis

app_name = "sync"

urlpatterns = [
    path(
        "integrations/<int:integration_id>/test-connection",
        apis.IntegrationTestConnectionApi.as_view(),
        name="test-connection",
    ),
    path(
        "integrations/<int:integration_id>/sync_companies",
        apis.IntegrationSyncCompaniesApi.as_view(),
        name="sync-companies",
    ),
    path(
        "integrations/<int:integration_id>/sync_jobs",
        apis.IntegrationSyncJobsApi.as_view(),
        name="sync-jobs",
    ),
    path(
        "integrations/<int:integration_id>/sync_quotes",
        apis.IntegrationSyncQuotesApi.as_view(),
        name="sync-quotes",
    ),
    path(
        "integrations/<int:integration_id>/full_sync",
        apis.IntegrationFullSyncApi.as_view(),
        name="full-sync",
    ),
    path(
        "integrations/<int:integration_id>/sync-status",
        apis.IntegrationSyncStatusApi.as_view(),
        name="sync-status",
    ),
    path(
        "integrations/<int:integration_id>/self-test",
        apis.IntegrationSelfTestApi.as_view(),
        name="self-test",
    ),
]
