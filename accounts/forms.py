"""Forms for the login/sign-up pages and the Django admin."""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AdminUserCreationForm, AuthenticationForm, PasswordResetForm
from django.contrib.auth.forms import UserChangeForm as BaseUserChangeForm
from django.core.exceptions import ValidationError

from accounts.models import User
from accounts.throttling import login_attempt_check, password_reset_attempt_check


def _email_taken(email: str, *, exclude_pk: int | None = None) -> bool:
    return User.objects.filter(email__iexact=email).exclude(pk=exclude_pk).exists()


class ThrottledLoginMixin:
    """Counts each submitted login against the address and account limits before the password is checked."""

    def clean(self):
        # Throttle first, so refused attempts learn nothing about the password.
        refusal = login_attempt_check(self.request, email=self.data.get("username", ""))
        if refusal is not None:
            raise ValidationError(refusal.message, code="throttled")
        return super().clean()


class LoginForm(ThrottledLoginMixin, AuthenticationForm):
    """Django's login form, labelled for email and throttled."""

    username = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )


class AdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    """The Django admin's login form, throttled like the other login doors."""


class ThrottledPasswordResetForm(PasswordResetForm):
    """Django's "email me a reset link" form, throttled like login (by address and by the email asked for)."""

    def __init__(self, *args, request=None, **kwargs):
        self.request = request
        super().__init__(*args, **kwargs)

    def clean(self):
        cleaned = super().clean()
        if "email" in cleaned:
            refusal = password_reset_attempt_check(self.request, email=cleaned["email"])
            if refusal is not None:
                raise ValidationError(refusal.message, code="throttled")
        return cleaned


class SignupForm(forms.Form):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}))
    full_name = forms.CharField(max_length=150, required=False)
    password1 = forms.CharField(
        label="Password", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    password2 = forms.CharField(
        label="Password (again)", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password1") and cleaned.get("password1") != cleaned.get("password2"):
            self.add_error("password2", "The two passwords do not match.")
        return cleaned


class UserAdminCreationForm(AdminUserCreationForm):
    """The admin's add-user form for an email-only user (the password is hashed by the base form)."""

    class Meta:
        model = User
        fields = ("email", "full_name", "role")

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].lower()
        if _email_taken(email):
            raise ValidationError("A user with this email already exists.")
        return email


class UserAdminChangeForm(BaseUserChangeForm):
    class Meta:
        model = User
        fields = ("email", "password", "full_name", "role", "is_active", "last_login", "date_joined")

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].lower()
        if _email_taken(email, exclude_pk=self.instance.pk):
            raise ValidationError("A user with this email already exists.")
        return email
