from django.urls import path

from integrations import views

urlpatterns = [
    path("oauth/<int:integration_id>/connect/", views.oauth_connect, name="oauth-connect"),
    path("oauth/callback/", views.oauth_callback, name="oauth-callback"),
]
