"""Project, member and dataset pages: thin views over ``projects.selectors`` and ``projects.services``.

Reads use ``project_qs_for``/``dataset_qs_for``; writes look the object up in the editable or owned
queryset through ``get_object_or_403``: an outsider gets 404, a member without the right gets 403.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from codingagent.lib.http import AuthedHtmxRequest, get_object_or_403
from projects import services
from projects.forms import DatasetUploadForm, MemberAddForm, ProjectForm
from projects.models import Dataset, Project
from projects.selectors import (
    dataset_editable_qs_for,
    dataset_list_for_project,
    dataset_qs_for,
    member_list_for_project,
    project_editable_qs_for,
    project_list_for_user,
    project_owned_qs_for,
    project_qs_for,
    project_role_for,
)
from projects.uploads import dataset_upload_limited

DETAIL = "projects/project_detail.html"


def _form_errors(form, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def _project_context(request: AuthedHtmxRequest, project: Project, **extra: Any) -> dict[str, Any]:
    # Display-only flags; the write views enforce rights through querysets and the services.
    role = project_role_for(request.user, project)
    context = {
        "project": project,
        "datasets": dataset_list_for_project(project=project),
        "members": member_list_for_project(project=project),
        "can_edit": role.can_edit,
        "is_owner": role.is_owner,
        "upload_form": DatasetUploadForm(),
        "member_form": MemberAddForm(),
    }
    return {**context, **extra}


@login_required
@require_GET
def dashboard(request: AuthedHtmxRequest) -> HttpResponse:
    projects = project_list_for_user(user=request.user)
    return render(request, "projects/dashboard.html", {"projects": projects, "form": ProjectForm()})


@login_required
@require_POST
def project_create(request: AuthedHtmxRequest) -> HttpResponse:
    form = ProjectForm(request.POST)
    if form.is_valid():
        project = services.project_create(owner=request.user, **form.cleaned_data)
        return redirect(project)
    projects = project_list_for_user(user=request.user)
    return render(request, "projects/dashboard.html", {"projects": projects, "form": form}, status=400)


@login_required
@require_GET
def project_detail(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    project = get_object_or_404(project_qs_for(user=request.user), pk=pk)
    return render(request, DETAIL, _project_context(request, project))


@login_required
@require_http_methods(["GET", "POST"])
def project_update(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    project = get_object_or_403(
        project_editable_qs_for(user=request.user), visible=project_qs_for(user=request.user), pk=pk
    )
    form = ProjectForm(
        request.POST if request.method == "POST" else None,
        initial={"name": project.name, "description": project.description},
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.project_update(project=project, data=form.cleaned_data)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, "Project saved.")
            return redirect(project)
    return render(
        request, "projects/project_form.html", {"project": project, "form": form}, status=400 if form.errors else 200
    )


@login_required
@require_POST
def project_delete(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    project = get_object_or_403(
        project_owned_qs_for(user=request.user), visible=project_qs_for(user=request.user), pk=pk
    )
    services.project_delete(project=project, user=request.user)
    messages.success(request, f"Project “{project.name}” was deleted.")
    return redirect("projects:dashboard")


@login_required
@require_POST
def member_add(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    project = get_object_or_403(
        project_owned_qs_for(user=request.user), visible=project_qs_for(user=request.user), pk=pk
    )
    form = MemberAddForm(request.POST)
    if form.is_valid():
        try:
            services.member_add(project=project, **form.cleaned_data)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            form = MemberAddForm()
    if request.htmx:
        return render(request, f"{DETAIL}#members", _project_context(request, project, member_form=form))
    if form.errors:
        return render(request, DETAIL, _project_context(request, project, member_form=form), status=400)
    return redirect(project)


@login_required
@require_POST
def member_remove(request: AuthedHtmxRequest, pk: int, member_pk: int) -> HttpResponse:
    project = get_object_or_403(
        project_owned_qs_for(user=request.user), visible=project_qs_for(user=request.user), pk=pk
    )
    member = get_object_or_404(member_list_for_project(project=project), pk=member_pk)
    error = None
    try:
        services.member_remove(member=member, user=request.user)
    except ValidationError as exc:
        error = " ".join(exc.messages)
    if request.htmx:
        return render(request, f"{DETAIL}#members", _project_context(request, project, member_error=error))
    if error:
        messages.error(request, error)
    return redirect(project)


@dataset_upload_limited
@login_required
@require_POST
def dataset_upload(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    project = get_object_or_403(
        project_editable_qs_for(user=request.user), visible=project_qs_for(user=request.user), pk=pk
    )
    form = DatasetUploadForm(request.POST, request.FILES)
    dataset = None
    if form.is_valid():
        try:
            dataset = services.dataset_create(
                project=project, uploaded_file=form.cleaned_data["file"], user=request.user
            )
        except ValidationError as exc:
            _form_errors(form, exc)
    context = _project_context(
        request, project, upload_form=form if form.errors else DatasetUploadForm(), uploaded=dataset
    )
    if request.htmx:
        # Errors too answer 200 so htmx swaps them in next to the form.
        return render(request, f"{DETAIL}#datasets", context)
    if form.errors:
        return render(request, DETAIL, context, status=400)
    messages.success(request, f"Uploaded {dataset.name}.")
    return redirect(project)


@login_required
@require_GET
def dataset_detail(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    dataset = get_object_or_404(dataset_qs_for(user=request.user), pk=pk)
    project = get_object_or_404(project_qs_for(user=request.user), pk=dataset.project_id)
    return render(
        request,
        "projects/dataset_detail.html",
        {"dataset": dataset, "project": project, "can_edit": project_role_for(request.user, project).can_edit},
    )


@login_required
@require_GET
def dataset_download(request: AuthedHtmxRequest, pk: int) -> FileResponse:
    dataset = get_object_or_404(dataset_qs_for(user=request.user), pk=pk)
    # Through the storage API, so local files and S3 objects stream the same way.
    return FileResponse(dataset.file.open("rb"), as_attachment=True, filename=dataset.name)


@login_required
@require_POST
def dataset_delete(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    dataset: Dataset = get_object_or_403(
        dataset_editable_qs_for(user=request.user), visible=dataset_qs_for(user=request.user), pk=pk
    )
    project = get_object_or_404(project_qs_for(user=request.user), pk=dataset.project_id)
    services.dataset_delete(dataset=dataset, user=request.user)
    if request.htmx:
        return render(request, f"{DETAIL}#datasets", _project_context(request, project))
    messages.success(request, f"Deleted {dataset.name}.")
    return redirect(project)
