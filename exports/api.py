"""Exports and artifacts API: one APIView per operation, plain serializers, the same services as the pages."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analysis.models import Artifact
from codingagent.lib.http import paginated_response, paginated_serializer
from exports import services
from exports.artifacts import artifact_download_url, artifact_formats, artifact_title
from exports.selectors import (
    artifact_list_for_project,
    artifact_list_for_session,
    artifact_qs_for,
    session_qs_for,
)
from projects.selectors import project_qs_for


class ArtifactOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    title = serializers.SerializerMethodField()
    mime = serializers.CharField()
    size = serializers.IntegerField()
    meta = serializers.JSONField()
    pinned = serializers.BooleanField()
    project_id = serializers.IntegerField()
    session_id = serializers.IntegerField(allow_null=True)
    run_id = serializers.IntegerField(allow_null=True)
    step_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    downloads = serializers.SerializerMethodField()

    def get_title(self, artifact: Artifact) -> str:
        return artifact_title(artifact=artifact)

    def get_downloads(self, artifact: Artifact) -> dict[str, str]:
        request = self.context.get("request")
        urls = {f: artifact_download_url(artifact=artifact, fmt=f) for f in artifact_formats(artifact=artifact)}
        return {f: request.build_absolute_uri(u) if request else u for f, u in urls.items()}


class _ExportNegotiationMixin:
    """``?format=`` names the export format here, not a DRF renderer: never let content negotiation 404 on it."""

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)


_FORMAT_PARAM = OpenApiParameter(
    "format", str, enum=list(services.EXPORT_FORMATS), required=True, description="md (zip), json, pdf or ipynb"
)


def _export(target, request: Request) -> HttpResponse | Response:
    fmt = request.query_params.get("format", "")
    if fmt.lower() not in services.EXPORT_FORMATS:
        return Response(
            {"detail": f"Unknown export format {fmt!r}. Choose one of: {', '.join(services.EXPORT_FORMATS)}."},
            status=400,
        )
    return services.export_response(target=target, fmt=fmt, user=request.user)


class SessionExportApi(_ExportNegotiationMixin, APIView):
    @extend_schema(parameters=[_FORMAT_PARAM], responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request: Request, pk: int) -> HttpResponse | Response:
        session = get_object_or_404(session_qs_for(user=request.user), pk=pk)
        return _export(session, request)


class ProjectExportApi(_ExportNegotiationMixin, APIView):
    @extend_schema(parameters=[_FORMAT_PARAM], responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request: Request, pk: int) -> HttpResponse | Response:
        project = get_object_or_404(project_qs_for(user=request.user), pk=pk)
        return _export(project, request)


class ArtifactDetailApi(APIView):
    @extend_schema(responses=ArtifactOutputSerializer)
    def get(self, request: Request, pk: int) -> Response:
        artifact = get_object_or_404(artifact_qs_for(user=request.user), pk=pk)
        return Response(ArtifactOutputSerializer(artifact, context={"request": request}).data)


class SessionArtifactListApi(APIView):
    @extend_schema(responses=paginated_serializer(ArtifactOutputSerializer))
    def get(self, request: Request, pk: int) -> Response:
        session = get_object_or_404(session_qs_for(user=request.user), pk=pk)
        return paginated_response(
            queryset=artifact_list_for_session(session=session),
            serializer_class=ArtifactOutputSerializer,
            request=request,
            view=self,
        )


class ProjectArtifactListApi(APIView):
    @extend_schema(responses=paginated_serializer(ArtifactOutputSerializer))
    def get(self, request: Request, pk: int) -> Response:
        project = get_object_or_404(project_qs_for(user=request.user), pk=pk)
        return paginated_response(
            queryset=artifact_list_for_project(project=project),
            serializer_class=ArtifactOutputSerializer,
            request=request,
            view=self,
        )
