from django.urls import path

from projects import api

urlpatterns = [
    path("projects/", api.ProjectListApi.as_view(), name="project-list"),
    path("projects/<int:pk>/", api.ProjectDetailApi.as_view(), name="project-detail"),
    path("projects/<int:pk>/members/", api.ProjectMemberListApi.as_view(), name="project-member-list"),
    path(
        "projects/<int:pk>/members/<int:member_pk>/", api.ProjectMemberDetailApi.as_view(), name="project-member-detail"
    ),
    path("projects/<int:pk>/datasets/", api.ProjectDatasetListApi.as_view(), name="project-dataset-list"),
    path("datasets/<int:pk>/", api.DatasetDetailApi.as_view(), name="dataset-detail"),
]
