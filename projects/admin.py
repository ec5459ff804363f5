from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from projects import services
from projects.models import Dataset, Project, ProjectMember


class ProjectMemberInline(admin.TabularInline):
    model = ProjectMember
    extra = 0
    autocomplete_fields = ["user"]


class DatasetInline(admin.TabularInline):
    model = Dataset
    extra = 0
    fields = ["name", "format", "size", "row_count", "column_count", "created_at"]
    readonly_fields = fields
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "created_at", "updated_at"]
    search_fields = ["name", "owner__email"]
    list_select_related = ["owner"]
    autocomplete_fields = ["owner"]
    inlines = [ProjectMemberInline, DatasetInline]


class DatasetAdminAddForm(forms.ModelForm):
    """Adding a dataset in the admin runs the same validating, profiling service as an upload."""

    upload = forms.FileField(allow_empty_file=True, help_text="CSV, TSV, Excel (.xlsx), Parquet or JSON.")
    current_user = None  # set by DatasetAdmin.get_form

    class Meta:
        model = Dataset
        fields = ["project"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("project") and cleaned.get("upload") and not self.errors:
            try:
                self.instance = services.dataset_create(
                    project=cleaned["project"], uploaded_file=cleaned["upload"], user=self.current_user
                )
            except ValidationError as exc:
                self.add_error("upload", exc.message_dict.get("file", exc.messages))
        return cleaned


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "format", "size", "row_count", "column_count", "uploaded_by", "created_at"]
    list_filter = ["format"]
    search_fields = ["name", "original_filename", "project__name"]
    list_select_related = ["project", "uploaded_by"]
    autocomplete_fields = ["project", "uploaded_by"]
    readonly_fields = [
        "file",
        "original_filename",
        "size",
        "format",
        "row_count",
        "column_count",
        "profile",
        "created_at",
    ]
    fields = ["project", "name", "uploaded_by", *readonly_fields]

    def get_fields(self, request, obj=None):
        return ["project", "upload"] if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = DatasetAdminAddForm
        form = super().get_form(request, obj, change=change, **kwargs)
        form.current_user = request.user
        return form
