from __future__ import annotations

from django import forms

from projects.models import Project, ProjectMember


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=Project._meta.get_field("name").max_length)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)


class MemberAddForm(forms.Form):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"placeholder": "colleague@example.com"}))
    role = forms.ChoiceField(choices=ProjectMember.Role.choices, initial=ProjectMember.Role.VIEWER)


class DatasetUploadForm(forms.Form):
    # Empty files reach the service, which explains every refusal the same way for pages and API.
    file = forms.FileField(
        allow_empty_file=True,
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.tsv,.xlsx,.parquet,.json"}),
    )
