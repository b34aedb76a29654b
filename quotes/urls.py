from django.urls import path

from quotes import views

app_name = "quotes"

urlpatterns = [
    path("", views.quote_list, name="list"),
    path("export.csv", views.quote_export, name="export"),
    path("<int:pk>/", views.quote_detail, name="detail"),
    path("<int:pk>/decide/", views.quote_decide, name="decide"),
    path("<int:pk>/retry-writeback/", views.quote_retry_writeback, name="retry-writeback"),
]
