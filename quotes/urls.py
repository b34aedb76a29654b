from django.urls import path

from quotes import views

app_name = "quotes"

urlpatterns = [
    path("", views.quote_list, name="list"),
    path("<int:pk>/", views.quote_detail, name="detail"),
    path("<int:pk>/decide/", views.quote_decide, name="decide"),
    path("<int:pk>/retry-writeback/", views.quote_retry_writeback, name="retry-writeback"),
]
