"""Login, logout, password change and reset by email (Django's views with our templates) and optional sign-up."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.forms import LoginForm, SignupForm, ThrottledPasswordResetForm
from accounts.models import AuditEvent
from accounts.services import audit_record, signup_confirm, signup_request, user_theme_set, user_update
from accounts.throttling import login_failures_forget


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def form_invalid(self, form: LoginForm) -> HttpResponse:
        response = super().form_invalid(form)
        if form.has_error(NON_FIELD_ERRORS, code="throttled"):
            response.status_code = 429
        return response

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "signup_enabled": settings.SIGNUP_ENABLED}


class LogoutView(auth_views.LogoutView):
    pass


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:password_change_done")

    def form_valid(self, form) -> HttpResponse:
        # The new password's hash no longer matches the claim in the user's API tokens: they all stop working.
        response = super().form_valid(form)
        audit_record(event=AuditEvent.Event.PASSWORD_CHANGED, user=self.request.user, request=self.request)
        return response


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "accounts/password_change_done.html"


class PasswordResetView(auth_views.PasswordResetView):
    """The "email me a link" page: the same "check your email" page whether or not the address is registered (Django
    mails only active accounts with a usable password), throttled like login."""

    template_name = "accounts/password_reset.html"
    form_class = ThrottledPasswordResetForm
    email_template_name = "accounts/password_reset_email.txt"
    subject_template_name = "accounts/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")
    http_method_names = ["get", "post", "head", "options"]  # FormView would treat a PUT as a POST

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}

    def form_invalid(self, form) -> HttpResponse:
        response = super().form_invalid(form)
        response.status_code = 429 if form.has_error(NON_FIELD_ERRORS, code="throttled") else 400
        return response


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form) -> HttpResponse:
        # The one password service (as an admin's reset): API tokens and other sessions end, the reset is audited.
        user_update(user=form.user, data={"password": form.cleaned_data["new_password1"]}, actor=form.user,
                    request=self.request)  # fmt: skip
        login_failures_forget(email=form.user.email)
        del self.request.session[auth_views.INTERNAL_RESET_SESSION_TOKEN]
        return HttpResponseRedirect(self.get_success_url())


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """The same answer whether or not the email is registered: "check your inbox" (the inbox says which)."""
    if not settings.SIGNUP_ENABLED:
        raise Http404("Sign-up is disabled.")
    form = SignupForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            signup_request(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
                full_name=form.cleaned_data["full_name"],
                confirm_url=request.build_absolute_uri("/accounts/signup/confirm/"),
            )
        except ValidationError as exc:
            for field, field_messages in exc.message_dict.items():
                form.add_error("password1" if field == "password" else field, field_messages)
        else:
            return render(request, "accounts/signup_sent.html", {"email": form.cleaned_data["email"]})
    return render(request, "accounts/signup.html", {"form": form}, status=400 if form.errors else 200)


@require_GET
def signup_confirm_view(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    if not settings.SIGNUP_ENABLED:
        raise Http404("Sign-up is disabled.")
    user = signup_confirm(uidb64=uidb64, token=token)
    if user is None:
        messages.error(request, "This confirmation link is invalid or was already used. Log in, or sign up again.")
        return redirect("accounts:login")
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    audit_record(event=AuditEvent.Event.SIGNUP, user=user, request=request)
    return redirect(settings.LOGIN_REDIRECT_URL)


@login_required
@require_POST
def theme_update(request: HttpRequest) -> HttpResponse:
    """Remember the colour theme on the account (app.js posts it when the user toggles)."""
    try:
        user_theme_set(user=request.user, theme=request.POST.get("theme", ""))
    except ValidationError as exc:
        return HttpResponseBadRequest(" ".join(exc.messages))
    return HttpResponse(status=204)
