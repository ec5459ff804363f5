from django.urls import path

from exports import views

app_name = "exports"

urlpatterns = [
    path("assets/plotly.min.js", views.plotly_js, name="plotly-js"),
    path("artifacts/<int:pk>/", views.artifact_detail, name="artifact-detail"),
    path("artifacts/<int:pk>/download/", views.artifact_download, name="artifact-download"),
    path("artifacts/<int:pk>/pin/", views.artifact_pin, name="artifact-pin"),
    path("sessions/<int:pk>/artifacts/", views.session_artifacts, name="session-artifacts"),
    path("projects/<int:pk>/gallery/", views.project_gallery, name="project-gallery"),
    path("sessions/<int:pk>/export/", views.session_export, name="session-export"),
    path("projects/<int:pk>/export/", views.project_export, name="project-export"),
]
