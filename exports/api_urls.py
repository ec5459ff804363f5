from django.urls import path

from exports import api

urlpatterns = [
    path("sessions/<int:pk>/export", api.SessionExportApi.as_view(), name="session-export"),
    path("sessions/<int:pk>/export/", api.SessionExportApi.as_view()),  # like every other URL here
    path("projects/<int:pk>/export", api.ProjectExportApi.as_view(), name="project-export"),
    path("projects/<int:pk>/export/", api.ProjectExportApi.as_view()),
    path("artifacts/<int:pk>/", api.ArtifactDetailApi.as_view(), name="artifact-detail"),
    path("sessions/<int:pk>/artifacts/", api.SessionArtifactListApi.as_view(), name="session-artifact-list"),
    path("projects/<int:pk>/artifacts/", api.ProjectArtifactListApi.as_view(), name="project-artifact-list"),
]
