from __future__ import annotations

import pytest

from codingagent.tests.support import start_moto_server, stop_process


@pytest.fixture(scope="session")
def moto_endpoint():
    """An S3-compatible server of our own, so the S3 code path is exercised even in the embedded pass."""
    process, endpoint_url = start_moto_server()
    yield endpoint_url
    stop_process(process)
