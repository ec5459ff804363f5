from django.urls import path

from projects import views

app_name = "projects"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("projects/new/", views.project_create, name="project-create"),
    path("projects/<int:pk>/", views.project_detail, name="project-detail"),
    path("projects/<int:pk>/edit/", views.project_update, name="project-update"),
    path("projects/<int:pk>/delete/", views.project_delete, name="project-delete"),
    path("projects/<int:pk>/members/", views.member_add, name="member-add"),
    path("projects/<int:pk>/members/<int:member_pk>/remove/", views.member_remove, name="member-remove"),
    path("projects/<int:pk>/datasets/", views.dataset_upload, name="dataset-upload"),
    path("datasets/<int:pk>/", views.dataset_detail, name="dataset-detail"),
    path("datasets/<int:pk>/download/", views.dataset_download, name="dataset-download"),
    path("datasets/<int:pk>/delete/", views.dataset_delete, name="dataset-delete"),
]
