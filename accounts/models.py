from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        extra.setdefault("role", User.Role.ADMIN)
        return self.create_user(email, password, **extra)

    def get_by_natural_key(self, username: str | None) -> User:
        # Login by email is case-insensitive.
        return self.get(email__iexact=username)


class User(AbstractBaseUser, PermissionsMixin):
    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        USER = "user", "User"

    class Theme(models.TextChoices):
        SYSTEM = "system", "Follow the system"
        LIGHT = "light", "Light"
        DARK = "dark", "Dark"

    email = models.EmailField(unique=True)
    # The colour theme follows the user to every browser (the page applies it before first paint).
    theme = models.CharField(max_length=10, choices=Theme.choices, default=Theme.SYSTEM)
    full_name = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.USER)
    is_active = models.BooleanField(default=True)
    # Both follow ``role`` (see save()): admins get the Django admin and every permission.
    is_staff = models.BooleanField(default=False, editable=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def save(self, *args, **kwargs) -> None:
        # The role is the single source of truth for admin access.
        self.email = self.email.lower()
        self.is_staff = self.is_superuser = self.role == self.Role.ADMIN
        super().save(*args, **kwargs)

    @property
    def is_admin(self) -> bool:
        return self.role == self.Role.ADMIN

    @property
    def display_name(self) -> str:
        return self.full_name or self.email.split("@")[0]


class AuditEvent(models.Model):
    """One security-relevant event, append-only (the admin shows it read-only, filterable by kind and date).

    ``actor_email`` is written as well as ``actor`` so an event outlives the user, and failed logins for
    unknown addresses still say which address was tried.
    """

    class Event(models.TextChoices):
        LOGIN = "login", "Login"
        LOGIN_FAILED = "login_failed", "Failed login"
        LOCKOUT = "lockout", "Lockout"
        LOGOUT = "logout", "Logout"
        SIGNUP = "signup", "Sign-up"
        ROLE_CHANGED = "role_changed", "Role changed"
        PASSWORD_CHANGED = "password_changed", "Password changed"
        PASSWORD_RESET = "password_reset", "Password reset"
        EXPORT = "export", "Export"
        DELETION = "deletion", "Deletion"
        SANDBOX_REFUSAL = "sandbox_refusal", "Sandbox refusal"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    event = models.CharField(max_length=32, choices=Event.choices, db_index=True)
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_email = models.CharField(max_length=254, blank=True, db_index=True)
    target = models.CharField(max_length=300, blank=True, help_text="What the event was about.")
    ip = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_event_display()} · {self.actor_email or 'anonymous'} · {self.created_at:%Y-%m-%d %H:%M:%S}"


class RevokedTokenFamily(models.Model):
    """An API login (a refresh token and every token rotated or derived from it) ended by a logout.

    Access tokens carry the family id (claim ``sid``), so a logout ends them at once instead of at expiry.
    Rows older than the refresh lifetime are deleted at the next logout: no token of theirs is still valid.
    """

    sid = models.CharField(max_length=64, unique=True)
    revoked_at = models.DateTimeField(default=timezone.now, db_index=True)
