from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from config import health
from quotes.views import dashboard

urlpatterns = [
    path("health", health.health, name="health"),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("health/detailed", health.detailed, name="health-detailed"),
    path(settings.ADMIN_URL, admin.site.urls),
    path("", dashboard, name="dashboard"),
    path("", include(("portal.urls", "portal"))),
]
