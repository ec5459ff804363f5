"""State changes for projects, their members and their datasets.

Callers pass objects they looked up through ``projects.selectors`` with the right permission
(``project_editable_qs_for`` for edits and uploads, ``project_owned_qs_for`` for members and
deletion); these functions enforce the invariants that hold whoever calls them.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from accounts.models import AuditEvent, User
from accounts.services import audit_record
from projects.dataset_files import (
    dataset_filename_sanitize,
    dataset_filename_unique,
    dataset_size_check,
    dataset_upload_spooled,
)
from projects.models import Dataset, Project, ProjectMember
from projects.profiling import dataset_profile_build

PROJECT_UPDATABLE_FIELDS = ("name", "description")


def _files_delete_on_commit(names: list[str]) -> None:
    # Storage is not transactional: remove files only once the rows are gone for good.
    def delete() -> None:
        for name in names:
            default_storage.delete(name)

    if names:
        transaction.on_commit(delete)


@transaction.atomic
def project_create(*, owner: User, name: str, description: str = "") -> Project:
    """Create a project and its owner membership."""
    project = Project(owner=owner, name=name.strip(), description=description.strip())
    project.full_clean()
    project.save()
    ProjectMember.objects.create(project=project, user=owner, role=ProjectMember.Role.OWNER)
    return project


@transaction.atomic
def project_update(*, project: Project, data: dict[str, Any]) -> Project:
    for field in PROJECT_UPDATABLE_FIELDS:
        if field in data:
            setattr(project, field, data[field].strip())
    project.full_clean()
    project.save()
    return project


@transaction.atomic
def project_delete(*, project: Project, user: User | None = None) -> None:
    """Delete the project with everything in it; its dataset files go after the commit. Audited."""
    names = [name for name in project.datasets.values_list("file", flat=True) if name]
    audit_record(event=AuditEvent.Event.DELETION, user=user, target=f"project {project.pk} {project.name!r}")
    project.delete()
    _files_delete_on_commit(names)


def _touch(project: Project) -> None:
    Project.objects.filter(pk=project.pk).update(updated_at=timezone.now())


@transaction.atomic
def member_add(*, project: Project, email: str, role: str) -> ProjectMember:
    """Share ``project`` with the existing user who has ``email``."""
    user = User.objects.filter(email__iexact=email.strip(), is_active=True).first()
    if user is None:
        raise ValidationError({"email": f"No active user has the email “{email}”."})
    if project.memberships.filter(user=user).exists():
        raise ValidationError({"email": f"{user.email} is already a member of this project."})
    member = ProjectMember(project=project, user=user, role=role)
    member.full_clean(exclude=["project", "user"])
    member.save()
    return member


def _check_not_creator(member: ProjectMember, action: str) -> None:
    # The creator's owner membership keeps every project with at least one owner (and matches Project.owner).
    if member.user_id == member.project.owner_id:
        raise ValidationError({"role": f"The project's creator cannot be {action}."})


@transaction.atomic
def member_update(*, member: ProjectMember, role: str) -> ProjectMember:
    if role != member.role:
        _check_not_creator(member, "given another role")
    member.role = role
    member.full_clean(exclude=["project", "user"])
    member.save(update_fields=["role"])
    return member


@transaction.atomic
def member_remove(*, member: ProjectMember, user: User | None = None) -> None:
    _check_not_creator(member, "removed")
    audit_record(event=AuditEvent.Event.DELETION, user=user,
                 target=f"member {member.user.email} of project {member.project_id}")  # fmt: skip
    member.delete()


def dataset_create(*, project: Project, uploaded_file: UploadedFile, user: User) -> Dataset:
    """Validate, profile and store an uploaded dataset file.

    Checks the name, the size (declared and while copying) and the content (magic bytes, UTF-8,
    parsing) on a local temporary copy, and profiles that copy; only a file that passes is
    written to storage (``Dataset.file``). Raises ``ValidationError`` ({"file": [...]}) with
    nothing stored otherwise. The stored name is sanitized and unique within the project.
    """
    original = (uploaded_file.name or "dataset").strip()
    try:
        # Size first: an upload refused while streaming arrives without its real name.
        dataset_size_check(uploaded_file.size, max_bytes=settings.DATASET_MAX_BYTES)
        name = dataset_filename_sanitize(original)
        with dataset_upload_spooled(uploaded_file, name=name, max_bytes=settings.DATASET_MAX_BYTES) as spooled:
            profile = dataset_profile_build(path=spooled.path, fmt=spooled.format)
            return _dataset_store(
                project=project, user=user, name=name, original=original, spooled=spooled, profile=profile
            )
    except ValidationError as exc:
        raise ValidationError({"file": exc.messages}) from exc


@transaction.atomic
def _dataset_store(*, project: Project, user: User, name: str, original: str, spooled, profile: dict) -> Dataset:
    # Lock the project row so two uploads of "sales.csv" cannot both pick the same free name.
    Project.objects.select_for_update().filter(pk=project.pk).first()
    taken = set(project.datasets.values_list("name", flat=True))
    dataset = Dataset(
        project=project,
        uploaded_by=user,
        name=dataset_filename_unique(name, taken=taken),
        original_filename=original[-255:],
        size=spooled.size,
        format=spooled.format,
        row_count=profile["rows"],
        column_count=profile["column_count"],
        profile=profile,
    )
    with spooled.path.open("rb") as fh:
        dataset.file.save(dataset.name, File(fh, name=dataset.name), save=False)
    try:
        dataset.save()
    except Exception:
        dataset.file.delete(save=False)
        raise
    _touch(project)
    return dataset


@transaction.atomic
def dataset_delete(*, dataset: Dataset, user: User | None = None) -> None:
    name = dataset.file.name
    project = dataset.project
    audit_record(event=AuditEvent.Event.DELETION, user=user,
                 target=f"dataset {dataset.pk} {dataset.name!r} of project {project.pk}")  # fmt: skip
    dataset.delete()
    _touch(project)
    _files_delete_on_commit([name] if name else [])
