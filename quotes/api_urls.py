from django.urls import path

from quotes import apis

urlpatterns = [
    path("", apis.QuoteListApi.as_view(), name="list"),
    path("<int:pk>/", apis.QuoteDetailApi.as_view(), name="detail"),
    path("<int:pk>/approve", apis.QuoteApproveApi.as_view(), name="approve"),
    path("<int:pk>/reject", apis.QuoteRejectApi.as_view(), name="reject"),
    path("<int:pk>/decisions", apis.QuoteDecisionListApi.as_view(), name="decisions"),
]
