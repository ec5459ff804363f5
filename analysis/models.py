from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.safestring import SafeString, mark_safe

from analysis import step_html
from codingagent.lib.urls import reverse_pk
from projects.models import Project


class AnalysisSessionQuerySet(models.QuerySet["AnalysisSession"]):
    def visible_to(self, user) -> AnalysisSessionQuerySet:
        return self.filter(project__in=Project.objects.visible_to(user))

    def editable_by(self, user) -> AnalysisSessionQuerySet:
        return self.filter(project__in=Project.objects.editable_by(user))


class AnalysisSession(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="sessions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="analysis_sessions")
    title = models.CharField(max_length=200)
    # "" means the deployment's default model (the offline analyst when no LLM is configured).
    model = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The run worker holding the session's live kernel (its variables): while that worker is alive, only it
    # claims the session's runs. Cleared when the kernel ends, with the reason kept for the next run's notice.
    kernel_worker = models.CharField(max_length=100, blank=True, db_index=True)
    kernel_lost_reason = models.CharField(max_length=300, blank=True)

    objects = AnalysisSessionQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at", "-pk"]
        indexes = [models.Index(fields=["project", "-updated_at"])]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        # Cached pattern: the session page lists up to 30 sibling sessions, the project page all of them.
        return reverse_pk("analysis:session-detail", self.pk)


class RunQuerySet(models.QuerySet["Run"]):
    def visible_to(self, user) -> RunQuerySet:
        return self.filter(session__project__in=Project.objects.visible_to(user))

    def active(self) -> RunQuerySet:
        return self.filter(status__in=Run.ACTIVE_STATUSES)


class Run(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)
    # Where a queued run stands (``selectors.run_queue_attach`` sets it before rendering; None otherwise).
    queue = None

    session = models.ForeignKey(AnalysisSession, on_delete=models.CASCADE, related_name="runs")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="runs")
    question = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    answer = models.TextField(blank=True)
    error = models.TextField(blank=True)
    model = models.CharField(max_length=200, blank=True)
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    cancel_requested = models.BooleanField(default=False)
    # Which worker holds the run and when it last proved it is alive (the reaper reads these).
    worker_id = models.CharField(max_length=100, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            # The database-level guarantee behind "one active run per session".
            models.UniqueConstraint(
                fields=["session"],
                condition=Q(status__in=["queued", "running"]),
                name="one_active_run_per_session",
            )
        ]

    def __str__(self) -> str:
        return f"Run {self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    @property
    def page_steps(self) -> list[Step]:
        """The run's steps in order: those the page selector prefetched into ``step_list``, else read now."""
        steps = getattr(self, "step_list", None)
        return steps if steps is not None else list(self.steps.all())

    # Where the session page shows each step (session_detail.html#run): thoughts, code, output and errors folded
    # into "work", artifacts beside it, the answer and notices below.

    @property
    def work_steps(self) -> list[Step]:
        return [s for s in self.page_steps if s.kind not in (Step.Kind.ANSWER, Step.Kind.ARTIFACT, Step.Kind.NOTICE)]

    @property
    def artifact_steps(self) -> list[Step]:
        return [s for s in self.page_steps if s.kind == Step.Kind.ARTIFACT]

    @property
    def answer_steps(self) -> list[Step]:
        return [s for s in self.page_steps if s.kind in (Step.Kind.ANSWER, Step.Kind.NOTICE)]


LONG_OUTPUT_LINES = 15  # an output longer than this starts folded on the session page


class Step(models.Model):
    class Kind(models.TextChoices):
        THOUGHT = "thought", "Thought"
        CODE = "code", "Code"
        OUTPUT = "output", "Output"
        ERROR = "error", "Error"
        ARTIFACT = "artifact", "Artifact"
        ANSWER = "answer", "Answer"
        NOTICE = "notice", "Notice"  # said by the system, not the model (e.g. the session's variables were cleared)

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps")
    ordinal = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    content = models.TextField(blank=True)
    # Structured extras (e.g. stdout/stderr split, final_result, artifact ids).
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The sanitized HTML of a thought, code or answer, rendered when saved (analysis/step_html.py); pages show
    # it through `content_html`, which trusts it only under a matching signature.
    html = models.TextField(blank=True, editable=False)
    html_signature = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        ordering = ["run_id", "ordinal"]
        constraints = [models.UniqueConstraint(fields=["run", "ordinal"], name="unique_step_ordinal_per_run")]

    def __str__(self) -> str:
        return f"Step {self.ordinal} ({self.kind}) of run {self.run_id}"

    @property
    def line_count(self) -> int:
        """Lines the step shows: its text (code, thought, stdout), and an output's stderr and display too."""
        texts = [self.content]
        if self.kind == self.Kind.OUTPUT:
            texts += [self.data.get("stderr") or "", str(self.data.get("display") or "")]
        return sum(len(text.splitlines()) for text in texts)

    @property
    def starts_folded(self) -> bool:
        """Long outputs are folded on the page (their line count shows on the fold)."""
        return self.kind == self.Kind.OUTPUT and self.line_count > LONG_OUTPUT_LINES

    def save(self, *args, **kwargs) -> None:
        """Every save of a step stores the HTML of its text, so no way of saving one leaves it stale."""
        if self.pk is None and self.kind == self.Kind.ANSWER:
            super().save(*args, **kwargs)  # an answer's marks carry its pk in their ids: render once it has one
            if self._html_refresh():
                Step.objects.filter(pk=self.pk).update(html=self.html, html_signature=self.html_signature)
            return
        if self._html_refresh() and kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "html", "html_signature"}
        super().save(*args, **kwargs)

    def _html_source(self) -> dict:
        return {"pk": self.pk, "kind": self.kind, "content": self.content, "data": self.data}

    def _html_refresh(self) -> bool:
        if self.kind not in step_html.KINDS or step_html.step_html_verified(
            **self._html_source(), html=self.html, signature=self.html_signature
        ):
            return False
        self.html = str(step_html.step_html_render(**self._html_source()))
        self.html_signature = step_html.step_html_signature(**self._html_source(), html=self.html)
        return True

    # The keys of ``data`` the session page reads, as their absence reads: its lookups then never fail (a failed one
    # costs the template engine three exceptions and a dir(); 250 of them on a 50-question page).
    PAGE_DATA_DEFAULTS = {"refusals": None, "duration": None, "stderr": "", "display": "", "final_result": None,
                          "traceback": ""}  # fmt: skip

    @property
    def page_data(self) -> dict:
        return {**self.PAGE_DATA_DEFAULTS, **(self.data if isinstance(self.data, dict) else {})}

    @property
    def shown_artifacts(self) -> list[Artifact]:
        """The step's artifacts: those the page selector prefetched into ``artifact_list``, else read now."""
        artifacts = getattr(self, "artifact_list", None)
        return artifacts if artifacts is not None else list(self.artifacts.all())

    @property
    def content_html(self) -> SafeString:
        """The sanitized HTML of the text: the stored one when its signature matches, else rendered now."""
        source = self._html_source()
        if step_html.step_html_verified(**source, html=self.html, signature=self.html_signature):
            return mark_safe(self.html)  # noqa: S308 - rendered and sanitized by step_html, signed when stored
        return step_html.step_html_render(**source)


def artifact_upload_to(instance: Artifact, filename: str) -> str:
    return f"projects/{instance.project_id}/artifacts/{filename}"


class ArtifactQuerySet(models.QuerySet["Artifact"]):
    def visible_to(self, user) -> ArtifactQuerySet:
        return self.filter(project__in=Project.objects.visible_to(user))


class Artifact(models.Model):
    class Kind(models.TextChoices):
        PLOTLY = "plotly", "Interactive chart"
        IMAGE = "image", "Image"
        TABLE = "table", "Table"
        FILE = "file", "File"

    # project is always set; session/run are set for artifacts a run produced.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="artifacts")
    session = models.ForeignKey(
        AnalysisSession, null=True, blank=True, on_delete=models.CASCADE, related_name="artifacts"
    )
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.CASCADE, related_name="artifacts")
    step = models.ForeignKey(Step, null=True, blank=True, on_delete=models.SET_NULL, related_name="artifacts")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    title = models.CharField(max_length=255, blank=True)
    file = models.FileField(upload_to=artifact_upload_to, max_length=500)
    mime = models.CharField(max_length=100)
    size = models.BigIntegerField(default=0)
    # Small metadata for rendering without reading the file (table shape/columns, figure title).
    meta = models.JSONField(default=dict, blank=True)
    pinned = models.BooleanField(default=False, help_text="Pinned to the project's gallery.")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ArtifactQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return self.title or f"{self.get_kind_display()} {self.pk}"


class WorkerProcess(models.Model):
    """One live run-worker process: its registry row, refreshed by its heartbeat.

    A worker is alive while ``heartbeat_at`` is younger than ``RUN_STALE_SECONDS``; its row is deleted when it
    stops cleanly. The kernel figures let ``/healthz`` and operators see memory per worker.
    """

    id = models.CharField(primary_key=True, max_length=100)  # the worker id, "<hostname>:<pid>:<random>"
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    heartbeat_at = models.DateTimeField(db_index=True)
    concurrency = models.PositiveIntegerField(default=0)
    runs_active = models.PositiveIntegerField(default=0)
    kernels = models.PositiveIntegerField(default=0)
    kernel_pss_mb = models.FloatField(default=0)
    worker_pss_mb = models.FloatField(default=0)

    class Meta:
        ordering = ["started_at", "id"]

    def __str__(self) -> str:
        return f"Worker {self.id}"
