"""The web side while PostgreSQL is down: clear 503s (HTML page, JSON for the API, /healthz naming the
database, websockets told to retry), then everything answers again by itself once PostgreSQL is back."""

from __future__ import annotations

import pytest

from analysis.tests.faults.conftest import postgres_stack, unique_prefix
from analysis.tests.faults.servers import wait_until
from analysis.tests.faults.stack import WsClient


@pytest.fixture
def stack(tmp_path, postgres_server, postgres_template):
    stack = postgres_stack(tmp_path, postgres_server, postgres_template, redis_prefix=unique_prefix("dbweb"))
    yield stack
    stack.close()
    if not postgres_server.is_up():  # the test failed during the outage: the next test needs it
        postgres_server.start()


def test_pages_api_healthz_and_websockets_answer_503_while_the_database_is_down_then_recover(stack, postgres_server):
    seeded = stack.seeded
    session = seeded.sessions[0]
    web = stack.start_web()
    assert web.request("GET", f"/sessions/{session}/", cookie=seeded.cookie)[0] == 200

    postgres_server.stop()
    page_status, page_headers, page = web.request("GET", f"/sessions/{session}/", cookie=seeded.cookie)
    api_status, api = web.json("GET", f"/api/v1/sessions/{session}/", token=seeded.token)
    query_status, query = web.json(
        "POST", f"/api/v1/sessions/{session}/query", token=seeded.token, body={"question": "mean revenue?"}
    )
    health_status, health = web.json("GET", "/healthz")
    with pytest.raises(RuntimeError, match="websocket refused") as refused:
        WsClient(web.port, f"/ws/sessions/{session}/?after=0", cookie=seeded.cookie)
    postgres_server.start()
    recovered = wait_until(
        lambda: web.request("GET", f"/sessions/{session}/", cookie=seeded.cookie)[0] == 200,
        timeout=30,
        what="the session page to answer 200 again",
    )
    api_after, _body = web.json("GET", f"/api/v1/sessions/{session}/", token=seeded.token)
    health_after, _health = web.json("GET", "/healthz")

    assert page_status == 503
    assert page_headers["Retry-After"] == "5"
    assert "The database is unavailable right now" in page
    assert 'id="service-unavailable"' in page
    assert (api_status, api) == (503, {"detail": api["detail"]})
    assert "database is unavailable" in api["detail"]
    assert query_status == 503 and "database is unavailable" in query["detail"]
    assert health_status == 503 and health["failing"][0] == "database"
    assert " 403 " in str(refused.value)  # a refused handshake: the page retries with a backoff
    assert recovered
    assert api_after == 200
    assert health_after == 200
    assert "Traceback" not in stack.log("web")
