"""Create (or repair) the demo account and the demo project that ``make run`` starts with.

Idempotent: run it on every start. It prints the demo credentials each time, so a
newcomer never has to look for them. The password is, in order: ``--password``
(``make run`` passes ``DEMO_PASSWORD``), the one saved by an earlier run in
``DATA_DIR/demo_password`` (mode 0600), or a new random one.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User
from projects.models import Project
from projects.services import dataset_create, project_create

DEMO_EMAIL = "demo@codingagent.local"
DEMO_PROJECT = "Demo: sales 2024"
SAMPLE_CSV = Path(__file__).resolve().parents[2] / "sample_data" / "sales.csv"


class Command(BaseCommand):
    help = "Create the demo admin account and a demo project with the sample sales dataset."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--password", default="", help="Use (and set) this demo password.")
        parser.add_argument("--no-project", action="store_true", help="Create only the demo account.")

    def handle(self, *args, password: str = "", no_project: bool = False, **options) -> None:
        user, password = demo_user_ensure(password=password)
        line = f"Demo account: {DEMO_EMAIL} / password: {password}"
        self.stdout.write(self.style.SUCCESS(line))
        if no_project:
            return
        project = demo_project_ensure(user=user)
        self.stdout.write(f"Demo project: {project.name!r} (/projects/{project.pk}/) with {SAMPLE_CSV.name}")


def _password_file() -> Path:
    return Path(settings.DATA_DIR) / "demo_password"


def demo_user_ensure(*, password: str = "") -> tuple[User, str]:
    """Return the demo admin and a password that logs it in (creating or resetting as needed)."""
    saved = _password_file()
    user = User.objects.filter(email__iexact=DEMO_EMAIL).first()
    if not password and saved.exists():
        password = saved.read_text().strip()
    if user is not None and password and user.check_password(password):
        return user, password
    # A missing file, a changed --password or a reset database: (re)set and remember it.
    password = password or secrets.token_urlsafe(12)
    if user is None:
        user = User.objects.create_superuser(DEMO_EMAIL, password, full_name="Demo Admin")
    else:
        user.set_password(password)
        user.is_active = True
        user.save()
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.touch(mode=0o600)
    saved.write_text(password + "\n")
    return user, password


@transaction.atomic
def demo_project_ensure(*, user: User) -> Project:
    project = Project.objects.owned_by(user).filter(name=DEMO_PROJECT).first()
    if project is None:
        project = project_create(
            owner=user,
            name=DEMO_PROJECT,
            description="Daily sales of six products in four regions during 2024 (500 orders). "
            "Try: “show me a bar chart of revenue by region”.",
        )
    if not project.datasets.filter(original_filename=SAMPLE_CSV.name).exists():
        upload = SimpleUploadedFile(SAMPLE_CSV.name, SAMPLE_CSV.read_bytes(), content_type="text/csv")
        dataset_create(project=project, uploaded_file=upload, user=user)
    return project
