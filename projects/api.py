"""Projects, members and datasets API: one APIView per endpoint, plain serializers, the services underneath.

Lookups go through the permission selectors: an outsider gets 404; a member whose role does not
allow a write gets 403 (``get_object_or_403``).
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from codingagent.lib.http import api_validation_errors, get_object_or_403, paginated_response, paginated_serializer
from projects import services
from projects.models import Dataset, Project, ProjectMember
from projects.selectors import (
    dataset_editable_qs_for,
    dataset_list_for_project,
    dataset_qs_for,
    member_list_for_project,
    project_editable_qs_for,
    project_list_for_user,
    project_owned_qs_for,
    project_qs_for,
)
from projects.uploads import install_dataset_upload_limit


class UserBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    full_name = serializers.CharField()


class ProjectOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    owner = UserBriefSerializer()
    my_role = serializers.ChoiceField(choices=ProjectMember.Role.choices, help_text="The caller's role in the project.")
    dataset_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class MemberOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    user = UserBriefSerializer()
    role = serializers.ChoiceField(choices=ProjectMember.Role.choices)
    created_at = serializers.DateTimeField()


class DatasetOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.IntegerField(source="project_id")
    name = serializers.CharField(help_text="Sanitized file name, unique in the project (what the agent's code opens).")
    original_filename = serializers.CharField()
    format = serializers.ChoiceField(choices=Dataset.Format.choices)
    size = serializers.IntegerField(help_text="Bytes.")
    row_count = serializers.IntegerField()
    column_count = serializers.IntegerField()
    uploaded_by = UserBriefSerializer(allow_null=True)
    created_at = serializers.DateTimeField()
    download_url = serializers.SerializerMethodField()

    def get_download_url(self, dataset: Dataset) -> str:
        return reverse("projects:dataset-download", args=[dataset.pk])


class DatasetDetailOutputSerializer(DatasetOutputSerializer):
    profile = serializers.JSONField(
        help_text="{rows, column_count, columns: [{name, dtype, kind, missing, stats}], preview: {columns, rows}}"
    )


def _project_out(*, user, pk: int) -> dict:
    # Re-read through the list selector so every answer carries my_role and dataset_count.
    return ProjectOutputSerializer(project_list_for_user(user=user).get(pk=pk)).data


def _project_for(request: Request, pk: int, *, allowed) -> Project:
    return get_object_or_403(allowed(user=request.user), visible=project_qs_for(user=request.user), pk=pk)


class ProjectListApi(APIView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ProjectListInput"

        name = serializers.CharField(max_length=200)
        description = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema(operation_id="projects_list", responses={200: paginated_serializer(ProjectOutputSerializer)})
    def get(self, request: Request) -> Response:
        projects = project_list_for_user(user=request.user)
        return paginated_response(
            queryset=projects, serializer_class=ProjectOutputSerializer, request=request, view=self
        )

    @extend_schema(request=InputSerializer, responses={201: ProjectOutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with api_validation_errors():
            project = services.project_create(owner=request.user, **data.validated_data)
        return Response(_project_out(user=request.user, pk=project.pk), status=status.HTTP_201_CREATED)


class ProjectDetailApi(APIView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ProjectDetailInput"

        name = serializers.CharField(max_length=200, required=False)
        description = serializers.CharField(required=False, allow_blank=True)

    @extend_schema(responses={200: ProjectOutputSerializer})
    def get(self, request: Request, pk: int) -> Response:
        project = get_object_or_404(project_list_for_user(user=request.user), pk=pk)
        return Response(ProjectOutputSerializer(project).data)

    @extend_schema(request=InputSerializer, responses={200: ProjectOutputSerializer})
    def patch(self, request: Request, pk: int) -> Response:
        project = _project_for(request, pk, allowed=project_editable_qs_for)
        data = self.InputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        with api_validation_errors():
            services.project_update(project=project, data=data.validated_data)
        return Response(_project_out(user=request.user, pk=project.pk))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        project = _project_for(request, pk, allowed=project_owned_qs_for)
        services.project_delete(project=project, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProjectMemberListApi(APIView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ProjectMemberListInput"

        email = serializers.EmailField()
        role = serializers.ChoiceField(choices=ProjectMember.Role.choices, default=ProjectMember.Role.VIEWER)

    @extend_schema(operation_id="projects_members_list", responses={200: paginated_serializer(MemberOutputSerializer)})
    def get(self, request: Request, pk: int) -> Response:
        project = get_object_or_404(project_qs_for(user=request.user), pk=pk)
        members = member_list_for_project(project=project)
        return paginated_response(queryset=members, serializer_class=MemberOutputSerializer, request=request, view=self)

    @extend_schema(request=InputSerializer, responses={201: MemberOutputSerializer})
    def post(self, request: Request, pk: int) -> Response:
        project = _project_for(request, pk, allowed=project_owned_qs_for)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with api_validation_errors():
            member = services.member_add(project=project, **data.validated_data)
        return Response(MemberOutputSerializer(member).data, status=status.HTTP_201_CREATED)


class ProjectMemberDetailApi(APIView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ProjectMemberDetailInput"

        role = serializers.ChoiceField(choices=ProjectMember.Role.choices)

    def _member(self, request: Request, pk: int, member_pk: int) -> ProjectMember:
        project = _project_for(request, pk, allowed=project_owned_qs_for)
        return get_object_or_404(member_list_for_project(project=project).select_related("project"), pk=member_pk)

    @extend_schema(request=InputSerializer, responses={200: MemberOutputSerializer})
    def patch(self, request: Request, pk: int, member_pk: int) -> Response:
        member = self._member(request, pk, member_pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with api_validation_errors():
            member = services.member_update(member=member, role=data.validated_data["role"])
        return Response(MemberOutputSerializer(member).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int, member_pk: int) -> Response:
        member = self._member(request, pk, member_pk)
        with api_validation_errors():
            services.member_remove(member=member, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProjectDatasetListApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ProjectDatasetListInput"

        file = serializers.FileField(allow_empty_file=True, help_text="CSV, TSV, Excel (.xlsx), Parquet or JSON.")

    def initialize_request(self, request, *args, **kwargs):
        # Before DRF (or its CSRF check) parses the body, so an oversize upload is refused while streaming.
        install_dataset_upload_limit(request)
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(
        operation_id="projects_datasets_list", responses={200: paginated_serializer(DatasetOutputSerializer)}
    )
    def get(self, request: Request, pk: int) -> Response:
        project = get_object_or_404(project_qs_for(user=request.user), pk=pk)
        datasets = dataset_list_for_project(project=project)
        return paginated_response(
            queryset=datasets, serializer_class=DatasetOutputSerializer, request=request, view=self
        )

    @extend_schema(request={"multipart/form-data": InputSerializer}, responses={201: DatasetDetailOutputSerializer})
    def post(self, request: Request, pk: int) -> Response:
        project = _project_for(request, pk, allowed=project_editable_qs_for)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with api_validation_errors():
            dataset = services.dataset_create(
                project=project, uploaded_file=data.validated_data["file"], user=request.user
            )
        return Response(DatasetDetailOutputSerializer(dataset).data, status=status.HTTP_201_CREATED)


class DatasetDetailApi(APIView):
    @extend_schema(responses={200: DatasetDetailOutputSerializer})
    def get(self, request: Request, pk: int) -> Response:
        dataset = get_object_or_404(dataset_qs_for(user=request.user), pk=pk)
        return Response(DatasetDetailOutputSerializer(dataset).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        dataset = get_object_or_403(
            dataset_editable_qs_for(user=request.user), visible=dataset_qs_for(user=request.user), pk=pk
        )
        services.dataset_delete(dataset=dataset, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
