from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from config import health
from config.metrics import metrics_view
from quotes.views import dashboard
from sync.webhooks import WebhookView

urlpatterns = [
    path("health", health.health, name="health"),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("health/detailed", health.detailed, name="health-detailed"),
    path("metrics", metrics_view, name="metrics"),
    path(f"{settings.ADMIN_URL}sync/", include("sync.admin_views")),  # before the admin's own
    path(settings.ADMIN_URL, admin.site.urls),
    path("integrations/", include(("integrations.urls", "integrations"))),
    path("api/v1/", include(("config.api_urls", "api"))),
    path("webhooks/<str:provider>/<int:integration_id>/", WebhookView.as_view(), name="webhook"),
    path(
        "webhooks/<str:provider>/<int:integration_id>/<str:token>/",
        WebhookView.as_view(),
        name="webhook-token",
    ),
    path("", dashboard, name="dashboard"),
    path("quotes/", include("quotes.urls")),
    path("", include(("portal.urls", "portal"))),
]

# JSON errors in the API's shape under /api/, the site's templates elsewhere (portal.api.errors).
handler404 = "portal.api.errors.not_found"
handler500 = "portal.api.errors.server_error"
