"""Shared checks for the red-team suites: an attack must fail and leave the sandbox usable."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import secrets

from analysis.sandbox import Result, Sandbox

MARK = "ESCAPED"
# Written into the canary file outside the workspace, and into the host's environment before any
# fork server starts: it must never show up in a result.
TOKEN = "canary-" + secrets.token_hex(8)
os.environ["SANDBOX_TEST_HOST_SECRET"] = TOKEN
PWN = "PWNED"


class Evil:
    """Unpickling this creates PWN in the working directory (the OS layers allow it), so only
    the policy's refusal to unpickle keeps it from appearing."""

    def __reduce__(self):
        return (exec, (f"open({PWN!r}, 'w').write('x')",))


def evil_pickles_written(workspace: str) -> bytes:
    """Evil pickled into `workspace` as evil.pkl and, gzipped, as evil.pkl.gz; returns the pickle."""
    payload = pickle.dumps(Evil())
    for name, data in {"evil.pkl": payload, "evil.pkl.gz": gzip.compress(payload)}.items():
        with open(os.path.join(workspace, name), "wb") as f:
            f.write(data)
    return payload


def leaked(result: Result, secret: str) -> bool:
    """True if `secret` shows up anywhere the caller (an LLM, a user) could see."""
    return secret in json.dumps(result.to_dict())


def assert_still_serves(sandbox: Sandbox, forkserver) -> None:
    """The host and fork server are alive and the next ordinary run works."""
    assert forkserver.alive()
    after = sandbox.run("1 + 1")
    assert after.ok, after.error
    assert after.display == "2"


def assert_escape_failed(sandbox: Sandbox, forkserver, code: str) -> Result:
    """Payloads print MARK only if the dangerous step succeeded."""
    result = sandbox.run(code)
    assert MARK not in result.stdout
    assert result.final_result != MARK
    assert not result.ok, "the payload ran to completion"
    assert_still_serves(sandbox, forkserver)
    return result
