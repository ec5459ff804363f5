from django.urls import path

from analysis import api

urlpatterns = [
    path("projects/<int:project_pk>/sessions/", api.SessionListCreateApi.as_view(), name="session-list"),
    path("sessions/<int:pk>/", api.SessionDetailApi.as_view(), name="session-detail"),
    path("sessions/<int:pk>/query", api.SessionQueryApi.as_view(), name="session-query"),
    # Action URLs also answer with the trailing slash every other URL has (reverse() gives the bare form).
    path("sessions/<int:pk>/query/", api.SessionQueryApi.as_view()),
    path("sessions/<int:pk>/runs/", api.SessionRunListApi.as_view(), name="session-runs"),
    path("runs/<int:pk>/", api.RunDetailApi.as_view(), name="run-detail"),
    path("runs/<int:pk>/cancel", api.RunCancelApi.as_view(), name="run-cancel"),
    path("runs/<int:pk>/cancel/", api.RunCancelApi.as_view()),
    path("runs/<int:pk>/events", api.RunEventsApi.as_view(), name="run-events"),
    path("runs/<int:pk>/events/", api.RunEventsApi.as_view()),
]
