"""HTML views for artifacts (full-size view, downloads, pinning, side panel, gallery) and exports."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET, require_POST

from codingagent.lib.http import AuthedHtmxRequest, get_object_or_403
from exports import services
from exports.artifacts import artifact_table_page, artifact_view_build
from exports.selectors import (
    artifact_editable_qs_for,
    artifact_list_for_project,
    artifact_list_for_session,
    artifact_qs_for,
    session_qs_for,
)
from projects.selectors import project_qs_for, project_role_for


@require_GET
def plotly_js(request: HttpRequest) -> FileResponse:
    """plotly.min.js from the installed plotly package (no CDN); versioned URL, cached for a year."""
    response = FileResponse(services.plotly_js_path().open("rb"), content_type="text/javascript; charset=utf-8")
    patch_cache_control(response, public=True, max_age=31_536_000, immutable=True)
    return response


@login_required
@require_GET
def artifact_detail(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    artifact = get_object_or_404(artifact_qs_for(user=request.user).select_related("project", "session"), pk=pk)
    page, sort = request.GET.get("page", 1), request.GET.get("sort", "")
    if request.htmx and artifact.kind == "table":
        # Pager and header clicks swap just the table block.
        table = artifact_table_page(artifact=artifact, page=page, sort=sort)
        return render(request, "exports/_table.html", {"artifact": artifact, "table": table})
    artifact.view = artifact_view_build(artifact=artifact, page=page, sort=sort)  # the one file read of this page
    context = {
        "artifact": artifact,
        "page": page,
        "sort": sort,
        "can_edit": project_role_for(request.user, artifact.project).can_edit,
    }
    return render(request, "exports/artifact_detail.html", context)


@login_required
@require_GET
def artifact_download(request: HttpRequest, pk: int) -> HttpResponse:
    artifact = get_object_or_404(artifact_qs_for(user=request.user), pk=pk)
    fmt = request.GET.get("format", "")
    try:
        filename, content_type, body = services.artifact_download_build(artifact=artifact, fmt=fmt)
    except services.UnknownFormat as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")
    except FileNotFoundError as exc:
        raise Http404("The artifact's file is missing.") from exc
    except ValueError:  # stored before the host checked artifacts, or damaged since
        return HttpResponse(
            "This artifact's file could not be read, so it cannot be downloaded in this format.",
            status=422,
            content_type="text/plain; charset=utf-8",
        )
    inline = request.GET.get("inline") == "1" and content_type in services.INLINE_SAFE_TYPES
    response = services.attachment_response(filename=filename, content_type=content_type, body=body, inline=inline)
    # An artifact's file never changes once stored: let the browser keep thumbnails and charts for a while.
    patch_cache_control(response, private=True, max_age=3600)
    return response


@login_required
@require_POST
def artifact_pin(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    # Viewers get 403, outsiders 404 (they must not learn the artifact exists).
    artifact = get_object_or_403(
        artifact_editable_qs_for(user=request.user), visible=artifact_qs_for(user=request.user), pk=pk
    )
    pinned = request.POST.get("pinned", "1") not in ("0", "false", "")
    artifact = services.artifact_pin_set(artifact=artifact, pinned=pinned)
    if request.htmx:
        return render(request, "_partials/artifact_thumb.html", {"artifact": artifact})
    return redirect("exports:artifact-detail", pk=artifact.pk)


@login_required
@require_GET
def session_artifacts(request: HttpRequest, pk: int) -> HttpResponse:
    session = get_object_or_404(session_qs_for(user=request.user), pk=pk)
    context = {
        "session": session,
        "artifacts": artifact_list_for_session(session=session),
        "can_edit": project_role_for(request.user, session.project).can_edit,
    }
    return render(request, "exports/session_artifacts.html", context)


@login_required
@require_GET
def project_gallery(request: HttpRequest, pk: int) -> HttpResponse:
    project = get_object_or_404(project_qs_for(user=request.user), pk=pk)
    context = {
        "project": project,
        "artifacts": artifact_list_for_project(project=project),
        "can_edit": project_role_for(request.user, project).can_edit,
    }
    return render(request, "exports/project_gallery.html", context)


@login_required
@require_GET
def session_export(request: HttpRequest, pk: int) -> HttpResponse:
    session = get_object_or_404(session_qs_for(user=request.user), pk=pk)
    return services.export_response(target=session, fmt=request.GET.get("format", ""), user=request.user)


@login_required
@require_GET
def project_export(request: HttpRequest, pk: int) -> HttpResponse:
    project = get_object_or_404(project_qs_for(user=request.user), pk=pk)
    return services.export_response(target=project, fmt=request.GET.get("format", ""), user=request.user)
