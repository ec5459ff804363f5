"""The analysis API: sessions, questions (runs), cancel, and run events as Server-Sent Events."""

from __future__ import annotations

import asyncio
import contextlib
import json

from asgiref.sync import sync_to_async
from django.db import InterfaceError, OperationalError, connection
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analysis import selectors, services
from analysis.models import Run, Step
from analysis.streaming.listen import session_wakeups
from codingagent.lib.http import api_validation_errors, get_object_or_403, paginated_response, paginated_serializer
from projects.selectors import project_editable_qs_for, project_qs_for

SSE_POLL_SECONDS = 1.0  # the longest wait between database reads; wake-ups come sooner
SSE_OUTAGE_RETRY_SECONDS = 1.0


class SessionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.IntegerField(source="project_id")
    title = serializers.CharField()
    model = serializers.CharField()
    user = serializers.EmailField(source="user.email")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class StepOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    ordinal = serializers.IntegerField()
    kind = serializers.CharField()
    content = serializers.CharField()
    data = serializers.JSONField()
    created_at = serializers.DateTimeField()


class RunOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    session = serializers.IntegerField(source="session_id")
    status = serializers.CharField()
    question = serializers.CharField()
    answer = serializers.CharField()
    error = serializers.CharField()
    model = serializers.CharField()
    tokens_in = serializers.IntegerField()
    tokens_out = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=12, decimal_places=6)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_seconds = serializers.FloatField(allow_null=True)


class ClaimOutputSerializer(serializers.Serializer):
    """One number of the answer and where it came from (docs/claims.md)."""

    text = serializers.CharField(help_text="the number as the answer writes it, e.g. '$1.2M' or '19.7%'")
    span = serializers.ListField(child=serializers.IntegerField(), help_text="[start, end) offsets in the answer")
    value = serializers.FloatField(help_text="the value the text states (19.7% is 0.197)")
    verified = serializers.BooleanField()
    step = serializers.IntegerField(allow_null=True, help_text="ordinal of the step that computed it")
    source = serializers.ChoiceField(choices=["final_result", "stdout", "table"], allow_null=True)
    location = serializers.JSONField(
        allow_null=True, help_text='e.g. {"row": 3, "column": "revenue"}, {"line": 2} or {"path": ["West"]}'
    )
    computed = serializers.FloatField(required=False, help_text="the computed value it matched")
    warning = serializers.CharField(required=False, help_text='e.g. "based on 12 rows" for a small group')


class RunDetailOutputSerializer(RunOutputSerializer):
    # While queued: its place among the runs that can be claimed (1 = next) and what it waits for, else null.
    queue_position = serializers.IntegerField(source="queue.position", allow_null=True, default=None)
    waiting_for = serializers.CharField(source="queue.waiting_for", allow_null=True, default=None)
    queue_message = serializers.CharField(source="queue.text", allow_null=True, default=None)
    steps = StepOutputSerializer(many=True, source="steps.all")
    claims = serializers.SerializerMethodField()
    claims_unverified = serializers.SerializerMethodField()

    @extend_schema_field(ClaimOutputSerializer(many=True))
    def get_claims(self, run: Run) -> list[dict]:
        return ClaimOutputSerializer(selectors.run_claims(run=run), many=True).data

    def get_claims_unverified(self, run: Run) -> int:
        return sum(1 for claim in selectors.run_claims(run=run) if not claim.get("verified"))


class UsageOutputSerializer(serializers.Serializer):
    n_runs = serializers.IntegerField()
    tokens_in = serializers.IntegerField()
    tokens_out = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=14, decimal_places=6)


class SessionDetailOutputSerializer(SessionOutputSerializer):
    usage = UsageOutputSerializer()


class RunStartedOutputSerializer(serializers.Serializer):
    run_id = serializers.IntegerField()
    status = serializers.CharField()


class SessionBusyOutputSerializer(serializers.Serializer):
    detail = serializers.CharField()
    active_run_id = serializers.IntegerField(allow_null=True)


class RunCancelOutputSerializer(RunStartedOutputSerializer):
    cancel_requested = serializers.BooleanField()


class SessionListCreateApi(APIView):
    class InputSerializer(serializers.Serializer):
        title = serializers.CharField(max_length=200)
        model = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

        class Meta:
            ref_name = "SessionListInput"

    @extend_schema(operation_id="sessions_list", responses={200: paginated_serializer(SessionOutputSerializer)})
    def get(self, request: Request, project_pk: int) -> Response:
        project = get_object_or_404(project_qs_for(user=request.user), pk=project_pk)
        qs = project.sessions.select_related("user").order_by("-updated_at", "-pk")
        return paginated_response(queryset=qs, serializer_class=SessionOutputSerializer, request=request, view=self)

    @extend_schema(request=InputSerializer, responses={201: SessionOutputSerializer})
    def post(self, request: Request, project_pk: int) -> Response:
        project = get_object_or_403(
            project_editable_qs_for(user=request.user),
            visible=project_qs_for(user=request.user),
            pk=project_pk,
        )
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with api_validation_errors():
            session = services.session_create(project=project, user=request.user, **data.validated_data)
        return Response(SessionOutputSerializer(session).data, status=status.HTTP_201_CREATED)


class SessionDetailApi(APIView):
    class InputSerializer(serializers.Serializer):
        title = serializers.CharField(max_length=200, required=False)
        model = serializers.CharField(max_length=200, required=False, allow_blank=True)

        class Meta:
            ref_name = "SessionDetailInput"

    @extend_schema(responses={200: SessionDetailOutputSerializer})
    def get(self, request: Request, pk: int) -> Response:
        session = get_object_or_404(selectors.session_qs_for(user=request.user), pk=pk)
        session.usage = selectors.usage_totals_for_session(session=session)
        return Response(SessionDetailOutputSerializer(session).data)

    @extend_schema(request=InputSerializer, responses={200: SessionOutputSerializer})
    def patch(self, request: Request, pk: int) -> Response:
        session = selectors.session_get_editable(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        with api_validation_errors():
            session = services.session_update(session=session, user=request.user, **data.validated_data)
        return Response(SessionOutputSerializer(session).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        session = selectors.session_get_editable(user=request.user, pk=pk)
        services.session_delete(session=session, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SessionQueryApi(APIView):
    class InputSerializer(serializers.Serializer):
        question = serializers.CharField(max_length=services.QUESTION_MAX_CHARS)

        class Meta:
            ref_name = "SessionQueryInput"

    @extend_schema(
        request=InputSerializer, responses={202: RunStartedOutputSerializer, 409: SessionBusyOutputSerializer}
    )
    def post(self, request: Request, pk: int) -> Response:
        session = selectors.session_get_editable(user=request.user, pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            with api_validation_errors():
                run = services.run_start(session=session, user=request.user, **data.validated_data)
        except services.SessionBusy as exc:
            body = {"detail": str(exc), "active_run_id": exc.run.pk if exc.run else None}
            return Response(body, status=status.HTTP_409_CONFLICT)
        except services.RunQueueUnserved as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response({"run_id": run.pk, "status": run.status}, status=status.HTTP_202_ACCEPTED)


class SessionRunListApi(APIView):
    @extend_schema(operation_id="sessions_runs_list", responses={200: paginated_serializer(RunOutputSerializer)})
    def get(self, request: Request, pk: int) -> Response:
        session = get_object_or_404(selectors.session_qs_for(user=request.user), pk=pk)
        qs = session.runs.order_by("-created_at", "-pk")
        return paginated_response(queryset=qs, serializer_class=RunOutputSerializer, request=request, view=self)


class RunDetailApi(APIView):
    @extend_schema(responses={200: RunDetailOutputSerializer})
    def get(self, request: Request, pk: int) -> Response:
        run = get_object_or_404(selectors.run_qs_for(user=request.user).prefetch_related("steps"), pk=pk)
        selectors.run_queue_attach([run])
        return Response(RunDetailOutputSerializer(run).data)


class RunCancelApi(APIView):
    @extend_schema(request=None, responses={200: RunCancelOutputSerializer})
    def post(self, request: Request, pk: int) -> Response:
        run = get_object_or_404(selectors.run_qs_for(user=request.user), pk=pk)
        run = services.run_cancel(run=run, user=request.user)
        return Response({"run_id": run.pk, "status": run.status, "cancel_requested": run.cancel_requested})


def step_event_payload(step: Step) -> dict:
    return {"id": step.pk, "ordinal": step.ordinal, "kind": step.kind, "content": step.content, "data": step.data}


def sse_format(*, event: str, data: dict, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, default=str)}\n\n"


async def run_event_stream(*, run_id: int, session_id: int, after_ordinal: int, poll: float = SSE_POLL_SECONDS):
    """Replay the run's steps after ``after_ordinal``, follow new ones, then ``done`` once the run ended.

    The database is read when the session's group says something was published (``session_wakeups``), and at
    the latest every ``poll`` seconds, so a lost wake-up only delays an event. While the database is
    unreachable the stream stays open (a comment line now and then) and resumes where it was once the database
    is back, so a follower rides out a restart without reconnecting.
    """
    cursor = after_ordinal
    yield ": stream of run events\n\n"
    async with session_wakeups(session_id) as woken:
        while True:
            tick = await sync_to_async(_stream_tick_through_outages)(run_id, cursor)
            if tick is None:
                yield ": the database is unavailable; waiting for it\n\n"
                await asyncio.sleep(SSE_OUTAGE_RETRY_SECONDS)
                continue
            steps, done = tick
            for step in steps:
                yield sse_format(event="step", data=step_event_payload(step), event_id=step.ordinal)
                cursor = step.ordinal
            if done is not None:
                yield sse_format(event="done", data=done)
                return
            await woken(poll)


def _stream_tick_through_outages(run_id: int, cursor: int) -> tuple[list[Step], dict | None] | None:
    """``_stream_tick``, or None while the database is unreachable (its broken connection dropped right here,
    in the thread that owns it, so the next tick reconnects)."""
    try:
        return _stream_tick(run_id, cursor)
    except (OperationalError, InterfaceError):
        with contextlib.suppress(Exception):
            connection.close()
        return None


def _stream_tick(run_id: int, cursor: int) -> tuple[list[Step], dict | None]:
    """The steps after ``cursor`` and, once the run ended, its ``done`` payload (None while it is active).

    The run is read before its steps: a run seen ended has saved every step, so one read of each is enough.
    """
    run = Run.objects.filter(pk=run_id).only("status", "answer", "error").first()
    steps = list(Step.objects.filter(run_id=run_id, ordinal__gt=cursor).order_by("ordinal"))
    if run is not None and run.status in Run.ACTIVE_STATUSES:
        return steps, None
    if run is None:  # deleted while followed
        return steps, {"status": Run.Status.FAILED, "answer": "", "error": "This run was deleted.", "claims": [],
                       "claims_unverified": 0}  # fmt: skip
    answer = next((step for step in reversed(steps) if step.kind == Step.Kind.ANSWER), None)
    if answer is None and cursor:  # the stream resumed after the answer was sent
        answer = Step.objects.filter(run_id=run_id, kind=Step.Kind.ANSWER).order_by("-ordinal").first()
    claims = selectors.answer_claims(answer)
    done = {
        "status": run.status,
        "answer": run.answer,
        "error": run.error,
        "claims": claims,
        "claims_unverified": sum(1 for claim in claims if not claim.get("verified")),
    }
    return steps, done


class EventStreamRenderer(BaseRenderer):
    """Lets content negotiation accept ``Accept: text/event-stream`` (EventSource, SSE libraries).

    The stream itself is a ``StreamingHttpResponse`` and bypasses renderers; only error responses (401, 404)
    come through here, as one ``event: error`` message a pure SSE client can still read.
    """

    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return sse_format(event="error", data=data if isinstance(data, dict) else {"detail": data}).encode()


class RunEventsApi(APIView):
    # Without the event-stream renderer DRF answered 406 to the Accept header every SSE client sends.
    renderer_classes = [JSONRenderer, EventStreamRenderer]

    @extend_schema(
        parameters=[
            OpenApiParameter("Last-Event-ID", int, OpenApiParameter.HEADER, required=False),
            OpenApiParameter("last_event_id", int, required=False, description="Same as the Last-Event-ID header"),
        ],
        responses={(200, "text/event-stream"): OpenApiTypes.STR},
        description=(
            "Server-Sent Events: `event: step` per step (JSON with ordinal, kind, content, data), then `event: done`"
            " (status, answer, error, claims, claims_unverified)."
        ),
    )
    def get(self, request: Request, pk: int) -> StreamingHttpResponse:
        run = get_object_or_404(selectors.run_qs_for(user=request.user), pk=pk)
        last = request.headers.get("Last-Event-ID") or request.query_params.get("last_event_id") or "0"
        after = int(last) if last.isdigit() else 0
        response = StreamingHttpResponse(
            run_event_stream(run_id=run.pk, session_id=run.session_id, after_ordinal=after),
            content_type="text/event-stream",
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # let proxies pass events through as they come
        return response
