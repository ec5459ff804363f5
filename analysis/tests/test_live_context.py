"""The session page and what the websocket pushes are rendered from one context builder
(``selectors.session_live_context``): a live run's footer, running indicator and the session's totals read the
same on a reload as in the pushes that streamed them."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.template.loader import render_to_string
from django.test import override_settings
from django.urls import reverse

from analysis import selectors
from analysis.agent.models import OFFLINE_MODEL_NAME, model_name
from analysis.models import Run, Step
from analysis.streaming import push
from analysis.tests.factories import AnalysisSessionFactory, RunFactory, StepFactory

pytestmark = pytest.mark.django_db
LOOPBACK = {"LLM_BASE_URL": "http://127.0.0.1:9/v1", "LLM_MODEL": "loopback", "OPENROUTER_API_KEY": ""}


class _TextOf(HTMLParser):
    def __init__(self, element_id: str) -> None:
        super().__init__()
        self.element_id, self.depth, self.found, self.text = element_id, 0, False, []

    def handle_starttag(self, tag, attrs) -> None:
        if self.depth or dict(attrs).get("id") == self.element_id:
            self.found = True
            self.depth += 1

    def handle_endtag(self, tag) -> None:
        if self.depth:
            self.depth -= 1

    def handle_data(self, data) -> None:
        if self.depth:
            self.text.append(data)


def _element(html: str, element_id: str) -> str:
    """The text of the element with this id (tags dropped, whitespace collapsed)."""
    parser = _TextOf(element_id)
    parser.feed(html)
    assert parser.found, f"#{element_id} not in the HTML"
    return " ".join("".join(parser.text).split())


@pytest.fixture
def session(project, alice):
    return AnalysisSessionFactory(project=project, user=alice, title="Revenue")


@override_settings(**LOOPBACK)
def test_a_streaming_runs_footer_and_totals_read_the_same_pushed_as_on_the_page(client, alice, session):
    RunFactory(session=session, status=Run.Status.SUCCEEDED, model="loopback", tokens_in=100, tokens_out=10)
    run = RunFactory(session=session, status=Run.Status.RUNNING, model="")  # the session's default model
    StepFactory(run=run, ordinal=1, kind=Step.Kind.THOUGHT)
    client.force_login(alice)

    page = client.get(reverse("analysis:session-detail", args=[session.pk])).content.decode()
    pushed = push.run_event(run_id=run.pk)["html"]

    footer = _element(pushed, f"run-{run.pk}-status")
    assert "loopback" in footer and "offline" not in footer and "local:" not in footer
    assert footer == _element(page, f"run-{run.pk}-status")
    usage = _element(pushed, "session-usage")
    assert usage.startswith("Session: 2 questions · 100 tokens in")  # the running one counts at once
    assert usage == _element(page, "session-usage")


def test_the_offline_analyst_is_named_as_its_finished_runs_are_while_it_runs(session):
    session.model = "offline"
    session.save()
    running = RunFactory(session=session, status=Run.Status.RUNNING, model="offline")
    finished = RunFactory(session=session, status=Run.Status.SUCCEEDED, model=OFFLINE_MODEL_NAME)

    live = _element(push.render_run_message(run=running, with_shell=False, session=session), f"run-{running.pk}-status")
    done = _element(
        push.render_run_message(run=finished, with_shell=False, session=session), f"run-{finished.pk}-status"
    )

    assert OFFLINE_MODEL_NAME in live and OFFLINE_MODEL_NAME in done
    assert not re.search(r"\boffline\b(?!-)", live)


@override_settings(**LOOPBACK)
def test_model_names_from_choice_keys_and_from_finished_runs():
    assert model_name("offline") == OFFLINE_MODEL_NAME
    assert model_name("local:loopback") == "loopback"
    assert model_name("openrouter:openai/gpt-4o") == "openai/gpt-4o"
    assert model_name("") == "loopback"  # the deployment's default
    assert model_name("gpt-4o-2024-08-06") == "gpt-4o-2024-08-06"  # what a finished run stored


def test_the_per_viewer_total_is_on_the_page_but_never_in_a_push(client, alice, session):
    run = RunFactory(session=session, status=Run.Status.SUCCEEDED)
    client.force_login(alice)

    page = client.get(reverse("analysis:session-detail", args=[session.pk])).content.decode()
    pushed = push.run_event(run_id=run.pk)["html"]

    assert _element(page, "user-usage").startswith("You in total: $")
    assert "user-usage" not in pushed and "in total" not in pushed


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([], "Thinking…"),
        ([("thought", "I will sum it", {})], "Thinking…"),
        ([("thought", "", {}), ("code", "df.revenue.sum()", {"execution": 1})], "Running code (step 1)…"),
        ([("code", "a", {}), ("output", "1", {}), ("code", "b", {})], "Running code (step 2)…"),
        ([("code", "import plotly.express as px\nfig = px.bar(df)", {})], "Drawing chart…"),
        ([("code", "a", {}), ("output", "1", {})], "Thinking…"),
        ([("code", "a", {}), ("output", "", {"final_result": 3})], "Writing the answer…"),
        ([("code", "a", {}), ("artifact", "Revenue by region", {})], "Writing the answer…"),
    ],
)
def test_the_running_indicator_names_what_the_run_does_from_its_newest_step(session, steps, expected):
    run = RunFactory(session=session, status=Run.Status.RUNNING)
    for ordinal, (kind, content, data) in enumerate(steps, start=1):
        StepFactory(run=run, ordinal=ordinal, kind=kind, content=content, data=data)

    from_db = selectors.run_live_prepare(Run.objects.get(pk=run.pk)).activity
    loaded = selectors.run_live_prepare(Run.objects.get(pk=run.pk), steps=list(run.steps.order_by("ordinal"))).activity

    assert from_db == loaded == expected


def test_the_indicator_waits_while_queued_and_is_gone_once_the_run_ended(session):
    queued = RunFactory(session=session, status=Run.Status.QUEUED)
    assert selectors.run_live_prepare(queued).activity == "Waiting to start…"
    for status in (Run.Status.SUCCEEDED, Run.Status.FAILED, Run.Status.CANCELLED):
        run = RunFactory(session=session, status=status)
        html = push.render_run_message(run=run, with_shell=False, session=session)
        assert f"run-{run.pk}-activity" not in html and "spinner" not in html


def test_each_pushed_step_of_a_live_run_refreshes_its_indicator_without_a_query(django_assert_num_queries, session):
    run = RunFactory(session=session, status=Run.Status.RUNNING)
    StepFactory(run=run, ordinal=1, kind="code", content="a = 1", data={"execution": 1})
    step = StepFactory(run=run, ordinal=2, kind="code", content="b = 2", data={"execution": 2})
    step = Step.objects.select_related("run").prefetch_related("artifacts").get(pk=step.pk)

    with django_assert_num_queries(0):
        html = push.render_step_message(step=step)

    assert f'<span hx-swap-oob="innerHTML:#run-{run.pk}-activity-text">Running code (step 2)…</span>' in html


def test_a_step_of_a_finished_run_carries_no_indicator(session):
    run = RunFactory(session=session, status=Run.Status.SUCCEEDED)
    step = StepFactory(run=run, ordinal=1, kind="answer", content="42")

    assert "activity" not in push.render_step_message(step=step)


def test_long_outputs_start_folded_with_their_line_count_and_code_folds_too(client, alice, session):
    run = RunFactory(session=session)
    StepFactory(run=run, ordinal=1, kind="code", content="for i in range(40):\n    print(i)")
    short = StepFactory(run=run, ordinal=2, kind="output", content="1\n2\n")
    long = StepFactory(run=run, ordinal=3, kind="output", content="".join(f"{i}\n" for i in range(40)))
    client.force_login(alice)

    page = client.get(reverse("analysis:session-detail", args=[session.pk])).content.decode()

    def fold(step_pk: int) -> str:
        return re.search(
            rf'id="step-{step_pk}".*?(<details[^>]*>)\s*<summary[^>]*>(.*?)</summary>', page, re.S
        ).groups()

    assert (short.line_count, long.line_count) == (2, 40)
    assert fold(short.pk)[0] == '<details class="step-fold" open>'
    assert fold(long.pk)[0] == '<details class="step-fold">' and "40 lines" in fold(long.pk)[1]
    code = run.steps.get(ordinal=1)
    assert "2 lines" in fold(code.pk)[1]


class _Oob(HTMLParser):
    """Every id on a page, and the targets of a message's top-level out-of-band elements."""

    VOID = {"input", "br", "img", "meta", "link", "hr", "source", "wbr", "col", "area", "base", "embed", "track"}

    def __init__(self) -> None:
        super().__init__()
        self.depth, self.ids, self.targets = 0, set(), set()

    def handle_starttag(self, tag, attrs) -> None:
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        oob = attrs.get("hx-swap-oob")
        if self.depth == 0 and oob:
            self.targets.add(oob.split(":", 1)[1].lstrip("#") if ":" in oob else attrs["id"])
        if tag not in self.VOID:
            self.depth += 1

    def handle_endtag(self, tag) -> None:
        if tag not in self.VOID:
            self.depth -= 1


def _parsed(html: str) -> _Oob:
    parser = _Oob()
    parser.feed(html)
    return parser


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_every_pushed_element_finds_its_target_on_the_page_of_editors_and_viewers(
    client, project, session, django_user_model, role
):
    from projects.models import ProjectMember
    from projects.tests.factories import ProjectMemberFactory

    user = django_user_model.objects.create_user(f"{role}@example.com", "pw-for-tests-1")
    ProjectMemberFactory(project=project, user=user, role=getattr(ProjectMember.Role, role.upper()))
    run = RunFactory(session=session, status=Run.Status.RUNNING)
    StepFactory(run=run, ordinal=1, kind="thought")
    step = StepFactory(run=run, ordinal=2, kind="code", content="x = 1", data={"execution": 1})
    client.force_login(user)
    page = _parsed(client.get(reverse("analysis:session-detail", args=[session.pk])).content.decode())

    event = push.run_event(run_id=run.pk)
    messages = [event["html"], push.render_step_message(step=Step.objects.select_related("run").get(pk=step.pk))]
    if role == "viewer":  # as the consumer sends them to a viewer
        messages = [push.readonly(m) for m in messages]

    for message in messages:
        targets = _parsed(message).targets
        assert targets and targets <= page.ids, targets - page.ids


def test_the_first_question_renames_an_untitled_session_on_the_page_at_once(client, alice, project):
    session = AnalysisSessionFactory(project=project, user=alice, title="Untitled session")
    client.force_login(alice)

    response = client.post(
        reverse("analysis:run-create", args=[session.pk]), {"question": "revenue by region"}, HTTP_HX_REQUEST="true"
    )

    html = response.content.decode()
    # The title box and the model picker's hidden copy (choosing a model must not save the old title back).
    assert re.search(r'<input id="session-title"[^>]*value="revenue by region"[^>]*hx-swap-oob="true"', html)
    assert re.search(r'id="model-picker-title" value="revenue by region" hx-swap-oob="true"', html)
    assert re.search(
        rf'<li id="sidebar-session-{session.pk}" class="current" hx-swap-oob="true"><a [^>]*>revenue by region<', html
    )
    assert "<title>revenue by region · CodingAgent</title>" in html
    page = _parsed(client.get(reverse("analysis:session-detail", args=[session.pk])).content.decode())
    assert _parsed(html).targets <= page.ids
    assert f"sidebar-session-{session.pk}" in _parsed(html).targets


def test_the_question_response_brings_the_new_run_and_the_usage_counting_it_and_one_composer(client, alice, session):
    # Nothing is pushed for the queued run (a worker publishes it): the asker's page must not say "0 questions"
    # beside the question it just asked.
    client.force_login(alice)

    response = client.post(
        reverse("analysis:run-create", args=[session.pk]), {"question": "How many rows?"}, HTTP_HX_REQUEST="true"
    )

    html = response.content.decode()
    run = session.runs.get()
    assert f'id="run-{run.pk}"' in html and f'id="run-{run.pk}-status"' in html
    assert _element(html, "session-usage").startswith("Session: 1 question ·")
    assert html.count('id="composer"') == 1


def test_renaming_by_hand_over_htmx_answers_with_the_title_and_the_sidebar_entry_out_of_band(client, alice, session):
    client.force_login(alice)

    response = client.post(
        reverse("analysis:session-update", args=[session.pk]), {"title": "  Margins  "}, HTTP_HX_REQUEST="true"
    )

    html = response.content.decode()
    session.refresh_from_db()
    assert response.status_code == 200 and session.title == "Margins"
    assert re.search(
        rf'<li id="sidebar-session-{session.pk}" class="current" hx-swap-oob="true"><a [^>]*>Margins<', html
    )
    assert re.search(r'<input id="session-title"[^>]*value="Margins"[^>]*hx-swap-oob="true"', html)
    page = _parsed(client.get(reverse("analysis:session-detail", args=[session.pk])).content.decode())
    assert _parsed(html).targets == {"session-title", "model-picker-title", f"sidebar-session-{session.pk}"}
    assert _parsed(html).targets <= page.ids


def test_the_rename_fragment_renders_from_the_session_in_hand_without_a_query(django_assert_num_queries, session):
    with django_assert_num_queries(0):  # it rides on every question's response (run_create)
        html = render_to_string("analysis/_session_title_oob.html", {"session": session})

    assert f'id="sidebar-session-{session.pk}"' in html


def test_an_old_session_is_in_its_own_pages_sidebar_so_a_rename_finds_its_entry(client, alice, project, session):
    AnalysisSessionFactory.create_batch(30, project=project, user=alice)  # all changed after `session`
    client.force_login(alice)

    page = _parsed(client.get(reverse("analysis:session-detail", args=[session.pk])).content.decode())

    assert f"sidebar-session-{session.pk}" in page.ids
    assert len([i for i in page.ids if i.startswith("sidebar-session-")]) == 31


def test_an_empty_session_suggests_questions_named_after_the_newest_datasets_columns(client, alice, project, session):
    from projects.tests.factories import DatasetFactory

    client.force_login(alice)
    url = reverse("analysis:session-detail", args=[session.pk])
    assert selectors.example_questions_for_session(session=session) == []
    assert "Upload a dataset" in _element(client.get(url).content.decode(), "empty-hint")

    columns = [("date", "datetime"), ("region", "text"), ("units", "numeric"), ("revenue", "numeric")]
    DatasetFactory(project=project, profile={"columns": [{"name": n, "kind": k} for n, k in columns]})

    assert selectors.example_questions_for_session(session=session) == [
        "Average revenue by region",
        "Show a bar chart of revenue by region",
        "Show the distribution of units",
    ]
    hint = _element(client.get(url).content.decode(), "empty-hint")
    assert "Average revenue by region" in hint and "Write your question" in hint
    DatasetFactory(project=project, profile={"sheets": [{"name": "Sheet1"}]})  # a workbook: no flat columns
    assert selectors.example_questions_for_session(session=session) == [
        "How many rows are there, and what do the columns contain?"
    ]
