from django.urls import path

from portal import attachments, views

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password-reset"),
    path("password-reset/sent/", views.PasswordResetDoneView.as_view(), name="password-reset-done"),
    path(
        "password-reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password-reset-confirm",
    ),
    path(
        "password-reset/done/",
        views.PasswordResetCompleteView.as_view(),
        name="password-reset-complete",
    ),
    path(
        "invitation/<uidb64>/<token>/",
        views.InvitationAcceptView.as_view(),
        name="invitation-accept",
    ),
    path("jobs/", views.job_list, name="job-list"),
    path("jobs/export.csv", views.job_export, name="job-export"),
    path("jobs/<int:pk>/", views.job_detail, name="job-detail"),
    path("jobs/<int:job_pk>/attachments/<int:pk>/", attachments.download, name="job-attachment"),
]
