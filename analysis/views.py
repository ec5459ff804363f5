"""HTML views of sessions and runs: thin adapters over analysis.services/selectors."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from analysis import selectors, services
from analysis.agent.models import model_choices, model_key_resolve, model_label
from analysis.forms import QuestionForm, SessionForm
from analysis.models import AnalysisSession
from analysis.streaming import push
from codingagent.lib.http import AuthedHtmxRequest, get_object_or_403
from projects.selectors import project_editable_qs_for, project_qs_for, project_role_for


def _form_errors(form) -> str:
    """Every message of an invalid form, in one line (for flash messages and the composer)."""
    return " ".join(message for messages_ in form.errors.values() for message in messages_)


def session_page_context(*, user, session: AnalysisSession) -> dict:
    runs = selectors.run_list_for_session_page(session=session)  # every run and step of the session
    selectors.run_queue_attach(runs)
    key = model_key_resolve(session.model)
    return {
        # The part pushes re-render comes from the same builder as theirs (analysis.streaming.push).
        **selectors.session_live_context(session=session, runs=runs, steps_loaded=True),
        "last_step_pk": max((step.pk for run in runs for step in run.step_list), default=0),
        # Flags the partials also take from htmx responses and pushes; a name missing from the context costs
        # the template engine a failed lookup (three exceptions) at each use, three times per run.
        "shell": False,
        "oob": False,
        "can_edit": project_role_for(user, session.project).can_edit,
        "model_choices": model_choices(),
        "current_model": key,
        "current_model_label": model_label(key),
        "user_usage": selectors.usage_totals_for_user(user=user),
        "example_questions": [] if runs else selectors.example_questions_for_session(session=session),
        "sibling_sessions": selectors.session_list_for_sidebar(session=session),
    }


@login_required
@require_GET
def session_detail(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    session = get_object_or_404(selectors.session_qs_for(user=request.user), pk=pk)
    return render(request, "analysis/session_detail.html", session_page_context(user=request.user, session=session))


@login_required
@require_GET
def project_sessions(request: AuthedHtmxRequest, project_pk: int) -> HttpResponse:
    project = get_object_or_404(project_qs_for(user=request.user), pk=project_pk)
    context = {
        "project": project,
        "sessions": list(selectors.session_list_for_project(project=project)),
        "can_edit": project_role_for(request.user, project).can_edit,
        "model_choices": model_choices(),
    }
    return render(request, "analysis/_project_sessions.html", context)


@login_required
@require_GET
def recent_sessions(request: AuthedHtmxRequest) -> HttpResponse:
    context = {
        "sessions": selectors.session_list_recent(user=request.user),
        "usage": selectors.usage_totals_for_user(user=request.user),
    }
    return render(request, "analysis/_recent_sessions.html", context)


@login_required
@require_POST
def session_create(request: AuthedHtmxRequest, project_pk: int) -> HttpResponse:
    project = get_object_or_403(
        project_editable_qs_for(user=request.user), visible=project_qs_for(user=request.user), pk=project_pk
    )
    form = SessionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
        return redirect(project)
    session = services.session_create(project=project, user=request.user, **form.cleaned_data)
    return redirect(session)


@login_required
@require_POST
def session_update(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    session = selectors.session_get_editable(user=request.user, pk=pk)
    form = SessionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
        return HttpResponseClientRedirect(session.get_absolute_url()) if request.htmx else redirect(session)
    services.session_update(session=session, user=request.user, **form.cleaned_data)
    if request.htmx:  # renamed in place: the title box and its copies, swapped out of band
        return render(request, "analysis/_session_title_oob.html", {"session": session})
    return redirect(session)


@login_required
@require_POST
def session_delete(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    session = selectors.session_get_editable(user=request.user, pk=pk)
    project = session.project
    services.session_delete(session=session, user=request.user)
    messages.success(request, f"Deleted session “{session.title}”.")
    return redirect(project)


@login_required
@require_POST
def run_create(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    session = selectors.session_get_editable(user=request.user, pk=pk)
    form = QuestionForm(request.POST)
    error, active, draft = "", None, request.POST.get("question", "")
    if form.is_valid():
        try:
            active = services.run_start(session=session, user=request.user, **form.cleaned_data)
            draft = ""
        except services.SessionBusy as exc:
            error, active = str(exc), exc.run
        except services.RunQueueUnserved as exc:  # the question stays in the composer
            error = str(exc)
        except ValidationError as exc:
            error = " ".join(exc.messages)
    else:
        error = _form_errors(form)
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect(session)
    context = {"session": session, "active_run": active, "composer_error": error, "draft": draft}
    response = render(request, "analysis/session_detail.html#composer", context)
    if active is not None and not error:
        # The new run's shell and the session's usage (now counting it) arrive with this response (the socket may
        # add them too; the client dedupes by id), and the title, which the first question of an untitled
        # session sets. The composer is this response's own content.
        response.content += push.render_run_message(
            run=active, with_shell=True, session=session, with_composer=False
        ).encode()
        response.content += render(request, "analysis/_session_title_oob.html", {"session": session}).content
    return response


@login_required
@require_POST
def run_cancel(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(selectors.run_qs_for(user=request.user), pk=pk)
    services.run_cancel(run=run, user=request.user)
    if request.htmx:
        return HttpResponse(status=204)
    return redirect(run.session)
