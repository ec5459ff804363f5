"""Claims end to end: a scripted model's answer over the real sandbox, then the API, SSE, the page and the prompt."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from django.urls import reverse
from pydantic_ai.messages import ModelResponse, TextPart

from analysis import selectors
from analysis.claims import claims_match
from analysis.models import Step
from analysis.tests.conftest import SALES
from analysis.tests.test_agent import _run_with, code_call, script
from analysis.tests.test_api import _collect

pytestmark = pytest.mark.django_db

CODE = """
import pandas as pd
df = pd.read_csv('sales.csv')
by_region = df.groupby('Region')['revenue'].sum().reset_index()
print('orders:', len(df))
print('mean revenue:', df['revenue'].mean())
final_result = {'total': float(df['revenue'].sum()), 'west_share': float(by_region.set_index('Region')['revenue']['West'] / df['revenue'].sum())}
by_region
"""
TOTAL = float(SALES["revenue"].sum())
BY_REGION = SALES.groupby("Region")["revenue"].sum()
WEST_SHARE = float(BY_REGION["West"] / TOTAL)
ANSWER = (
    f"Total revenue is **${TOTAL:,.2f}** over {len(SALES)} orders (a mean of {SALES['revenue'].mean():.2f}).\n\n"
    f"- West holds {WEST_SHARE * 100:.1f}% of it\n"
    f"- East made {BY_REGION['East']:,.1f}\n"
    f"- Margins were 37.5% and we served 3,141 customers"
)


@pytest.fixture
def claimed_run(session, sales, alice):
    model = script(code_call(CODE), ModelResponse(parts=[TextPart(ANSWER)]))
    return _run_with(model, session, alice)


def _by_text(run) -> dict[str, dict]:
    return {claim["text"]: claim for claim in selectors.run_claims(run=run)}


def test_true_numbers_are_verified_with_their_step_and_location(claimed_run):
    output = claimed_run.steps.get(kind=Step.Kind.OUTPUT).ordinal
    table = claimed_run.steps.get(kind=Step.Kind.ARTIFACT).ordinal

    claims = _by_text(claimed_run)

    assert claims[f"${TOTAL:,.2f}"] | {"span": None} == {
        "text": f"${TOTAL:,.2f}",
        "span": None,
        "value": pytest.approx(round(TOTAL, 2)),
        "verified": True,
        "step": output,
        "source": "final_result",
        "location": {"path": ["total"]},
        "computed": pytest.approx(TOTAL),
    }
    assert claims[f"{WEST_SHARE * 100:.1f}%"]["location"] == {"path": ["west_share"]}
    assert claims[str(len(SALES))]["source"] == "stdout"
    assert claims[str(len(SALES))]["location"] == {"line": 1}
    assert claims[f"{SALES['revenue'].mean():.2f}"]["location"] == {"line": 2}
    east = claims[f"{BY_REGION['East']:,.1f}"]
    assert (east["source"], east["step"]) == ("table", table)
    assert east["location"]["row"] == list(BY_REGION.index).index("East")
    assert east["location"]["column"] == "revenue"


def test_invented_numbers_are_unverified(claimed_run):
    claims = _by_text(claimed_run)

    assert claims["37.5%"]["verified"] is False
    assert claims["3,141"]["verified"] is False
    assert sum(not claim["verified"] for claim in claims.values()) == 2


def test_the_claim_spans_point_at_the_numbers_in_the_saved_answer(claimed_run):
    answer = claimed_run.steps.get(kind=Step.Kind.ANSWER).content

    spans = [answer[start:end] for start, end in (c["span"] for c in selectors.run_claims(run=claimed_run))]

    assert spans == [c["text"] for c in selectors.run_claims(run=claimed_run)]


def test_the_run_api_carries_claims_and_the_unverified_count(claimed_run, api):
    body = api.get(f"/api/v1/runs/{claimed_run.pk}/").json()

    assert body["claims_unverified"] == 2
    assert {"text", "value", "verified", "step", "source", "location"} <= set(body["claims"][0])
    assert [c["text"] for c in body["claims"]] == [c["text"] for c in selectors.run_claims(run=claimed_run)]


def test_the_sse_done_event_carries_the_claims(claimed_run, api):
    response = api.get(f"/api/v1/runs/{claimed_run.pk}/events")
    body = async_to_sync(_collect)(response)

    done = json.loads(body.split("event: done\ndata: ")[1].split("\n")[0])
    assert done["claims_unverified"] == 2
    assert len(done["claims"]) == len(selectors.run_claims(run=claimed_run))


def test_the_page_marks_verified_and_unverified_numbers_and_notes_the_unverified(claimed_run, client, alice):
    client.force_login(alice)

    html = client.get(reverse("analysis:session-detail", args=[claimed_run.session_id])).content.decode()

    assert html.count('class="claim claim-verified') == 5
    assert html.count('class="claim claim-unverified"') == 2
    assert "2 numbers in this answer were not found in any computed output." in html
    assert html.count('class="claim claim-verified claim-small-sample"') == 1  # East: a group of 6 rows
    assert "is based on 6 rows (fewer than 30)" in html
    assert 'data-claim-source="table" data-claim-row="' in html


def test_an_answer_cannot_forge_claim_marks(session, sales, alice, client):
    forged = 'Total \ue0000\ue001 999 \ue002 and <span class="claim claim-verified">1,234</span>'
    run = _run_with(script(ModelResponse(parts=[TextPart(forged)])), session, alice)
    client.force_login(alice)

    html = client.get(reverse("analysis:session-detail", args=[run.session_id])).content.decode()

    assert "\ue000" not in run.answer
    assert "claim-verified" not in html.split('id="session-stream"')[1]
    assert html.count('class="claim claim-unverified"') == 3  # 0 (the sentinels stripped), 999 and 1,234


def test_claims_gathered_during_the_run_equal_those_read_back_from_storage(claimed_run):
    answer = claimed_run.steps.get(kind=Step.Kind.ANSWER).content

    again = claims_match(answer=answer, question=claimed_run.question, pool=selectors.run_value_pool(run=claimed_run))

    assert again == selectors.run_claims(run=claimed_run)


def test_a_number_from_a_small_group_of_a_real_groupby_carries_a_warning(session, sales, alice):
    code = "import pandas as pd\ndf = pd.read_csv('sales.csv')\ndf.groupby('Region')['revenue'].mean().round(2)"
    means = SALES.groupby("Region")["revenue"].mean().round(2)
    answer = f"West averaged {means['West']:,.2f}."
    run = _run_with(script(code_call(code), ModelResponse(parts=[TextPart(answer)])), session, alice)

    (claim,) = selectors.run_claims(run=run)

    assert claim["source"] == "table"
    assert claim["location"]["label"] == "West"
    assert claim["warning"] == f"based on {int((SALES['Region'] == 'West').sum())} rows"
