"""The scripted model of the fault tests: a loopback OpenAI-compatible server whose conversation the test
can hold at a chosen point (to make an outage happen mid-run)."""

from __future__ import annotations

import threading
import time

from analysis.tests.llm_server import LoopbackLLM, text_reply, tool_reply


class GatedModel:
    """``tools`` tool calls (``x<i> = i``; print it), then a text answer. With ``hold_at=k`` the model call made
    after k tool results waits for ``release`` (``held`` is set when it starts waiting)."""

    def __init__(self, *, tools: int = 3, hold_at: int | None = None, delay: float = 0.0) -> None:
        self.tools, self.hold_at, self.delay = tools, hold_at, delay
        self.held = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, body: dict) -> dict:
        self.calls += 1
        done = sum(1 for message in body.get("messages", []) if message.get("role") == "tool")
        if done == self.hold_at and not self.release.is_set():
            self.held.set()
            self.release.wait(300)
        if self.delay:
            time.sleep(self.delay)
        if done < self.tools:
            return tool_reply(f"x{done} = {done}\nprint('x{done} =', x{done})", f"Step {done + 1}.")
        return text_reply(f"Done after {done} steps.")

    def server(self) -> LoopbackLLM:
        return LoopbackLLM(responder=self)
