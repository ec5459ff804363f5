from django.urls import path

from analysis import views

app_name = "analysis"

urlpatterns = [
    path("projects/<int:project_pk>/sessions/", views.project_sessions, name="project-sessions"),
    path("projects/<int:project_pk>/sessions/new/", views.session_create, name="session-create"),
    path("sessions/recent/", views.recent_sessions, name="recent-sessions"),
    path("sessions/<int:pk>/", views.session_detail, name="session-detail"),
    path("sessions/<int:pk>/edit/", views.session_update, name="session-update"),
    path("sessions/<int:pk>/delete/", views.session_delete, name="session-delete"),
    path("sessions/<int:pk>/runs/", views.run_create, name="run-create"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="run-cancel"),
]
