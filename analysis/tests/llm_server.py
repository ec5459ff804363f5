"""A tiny OpenAI-compatible chat-completions server on loopback, for tests of the real HTTP client path.

Scripted: each POST /v1/chat/completions takes the next scripted reply (text or a tool call), answered
non-streamed or as SSE chunks when the request says ``"stream": true``. ``hang=True`` never answers (until
the server is closed), to test a worker killed in the middle of a model call.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def text_reply(text: str) -> dict:
    return {"content": text}


def tool_reply(code: str, thought: str | None = None) -> dict:
    return {"content": thought, "tool_calls": [{"name": "run_python", "arguments": json.dumps({"code": code})}]}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver listens with a backlog of 5: 50 workers' runs calling at once overflowed it, and each
    # connection beyond it waited out a SYN retransmission (1 s, then 3 s), charged to the platform under test.
    request_queue_size = 256


class LoopbackLLM:
    def __init__(self, replies: list[dict] | None = None, *, hang: bool = False, usage=(120, 30), responder=None):
        self.replies = list(replies or [])
        self.responder = responder  # optional: body -> reply, for conversations that depend on the request
        self.hang = hang
        self.usage = usage
        self.requests: list[dict] = []
        self.received = threading.Event()
        self._release = threading.Event()
        self.server = _Server(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> LoopbackLLM:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def _next(self) -> dict:
        return self.replies.pop(0) if self.replies else text_reply("(no more scripted replies)")

    def _handler(self):
        llm = self

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, as model providers do: with HTTP/1.0 every call opened a new connection, a tenth of the
            # run worker's CPU in bench/load.py that no deployment pays (its client pools connections per loop).
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                if not self.path.endswith("/chat/completions"):
                    self.send_error(404)
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                llm.requests.append(body)
                llm.received.set()
                if llm.hang:
                    llm._release.wait(600)
                    self.close_connection = True
                    return
                reply = llm.responder(body) if llm.responder else llm._next()
                if body.get("stream"):
                    self._stream(body, reply)
                else:
                    self._json(body, reply)

            def _message(self, reply: dict) -> dict:
                message = {"role": "assistant", "content": reply.get("content")}
                if reply.get("tool_calls"):
                    message["tool_calls"] = [
                        {"id": f"call_{i}", "type": "function", "function": call}
                        for i, call in enumerate(reply["tool_calls"])
                    ]
                return message

            def _usage(self) -> dict:
                p, c = llm.usage
                return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}

            def _json(self, body: dict, reply: dict) -> None:
                finish = "tool_calls" if reply.get("tool_calls") else "stop"
                payload = {
                    "id": "chatcmpl-loopback",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body.get("model", "loopback"),
                    "choices": [{"index": 0, "message": self._message(reply), "finish_reason": finish}],
                    "usage": self._usage(),
                }
                raw = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _stream(self, body: dict, reply: dict) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")  # the stream ends with the connection (no length)
                self.end_headers()
                self.close_connection = True
                base = {
                    "id": "chatcmpl-loopback",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": body.get("model"),
                }

                def chunk(delta: dict, finish=None, usage=None) -> None:
                    data = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                    if usage:
                        data["usage"] = usage
                    self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
                    self.wfile.flush()

                chunk({"role": "assistant", "content": ""})
                text = reply.get("content") or ""
                for i in range(0, len(text), 8):
                    chunk({"content": text[i : i + 8]})
                for i, call in enumerate(reply.get("tool_calls") or []):
                    chunk(
                        {
                            "tool_calls": [
                                {
                                    "index": i,
                                    "id": f"call_{i}",
                                    "type": "function",
                                    "function": {"name": call["name"], "arguments": ""},
                                }
                            ]
                        }
                    )
                    args = call["arguments"]
                    for j in range(0, len(args), 16):
                        chunk({"tool_calls": [{"index": i, "function": {"arguments": args[j : j + 16]}}]})
                chunk({}, finish="tool_calls" if reply.get("tool_calls") else "stop", usage=self._usage())
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

        return Handler
