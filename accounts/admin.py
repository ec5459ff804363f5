from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.forms import AdminLoginForm, UserAdminChangeForm, UserAdminCreationForm
from accounts.models import AuditEvent, User
from accounts.services import audit_record

# The admin's login is a third way to guess passwords: it shares the login throttle.
admin.site.login_form = AdminLoginForm


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Django's UserAdmin for an email-login user whose admin rights follow ``role``."""

    form = UserAdminChangeForm
    add_form = UserAdminCreationForm
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name",)}),
        (
            "Access",
            {"fields": ("role", "is_active"), "description": "Admins get the Django admin and every permission."},
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "full_name", "role", "usable_password", "password1", "password2"),
            },
        ),
    )
    list_display = ("email", "full_name", "role", "is_active", "date_joined")
    list_filter = ("role", "is_active")
    search_fields = ("email", "full_name")
    ordering = ("email",)
    readonly_fields = ("last_login", "date_joined")
    filter_horizontal = ()

    def save_model(self, request, obj: User, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "role" in form.changed_data:
            audit_record(event=AuditEvent.Event.ROLE_CHANGED, user=request.user, request=request,
                         target=f"user {obj.email}", detail={"from": form.initial.get("role"), "to": obj.role})  # fmt: skip

    def delete_model(self, request, obj: User) -> None:
        audit_record(event=AuditEvent.Event.DELETION, user=request.user, request=request, target=f"user {obj.email}")
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        for user in queryset:
            audit_record(
                event=AuditEvent.Event.DELETION, user=request.user, request=request, target=f"user {user.email}"
            )
        super().delete_queryset(request, queryset)

    def user_change_password(self, request, id, form_url=""):
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            target = User.objects.filter(pk=id).values_list("email", flat=True).first()
            audit_record(
                event=AuditEvent.Event.PASSWORD_RESET, user=request.user, request=request, target=f"user {target}"
            )
        return response


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The security log: read-only for every admin, filterable by kind and date, searchable by who and what."""

    list_display = ("created_at", "event", "actor_email", "target", "ip")
    list_filter = ("event", ("created_at", admin.DateFieldListFilter))
    search_fields = ("actor_email", "target", "ip")
    date_hierarchy = "created_at"
    list_select_related = ("actor",)
    readonly_fields = ("created_at", "event", "actor", "actor_email", "target", "ip", "detail")
    list_per_page = 100

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
