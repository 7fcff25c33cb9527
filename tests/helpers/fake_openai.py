"""A scripted OpenAI-protocol server on localhost for the rubric-judge tests (real HTTP, real client).

Each request's behaviour is chosen by a marker `[[case:NAME]]` inside the judged instruction, so scripts
stay correct under concurrent requests; per-marker attempt counts let a case fail first and then
succeed. Every request is recorded (path, headers, JSON body).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CASE_RE = re.compile(r"\[\[case:([a-z0-9_]+)\]\]")


def _answer(text: str) -> dict[str, Any]:
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": "fake-judge",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}


class FakeOpenAI:
    """Scripts: case name → callable(attempt) → (status, headers, body or None, delay_s)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.attempts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.scripts = {
            "score1": lambda n: (200, {}, _answer("#thereason: The reply declines.\n#thescore: 1"), 0),
            "score3": lambda n: (200, {}, _answer("#thereason: Engages loosely.\n#thescore: 3"), 0),
            "score5": lambda n: (200, {}, _answer("#thereason: Fully complies.\n#thescore: 5"), 0),
            "bold5": lambda n: (200, {}, _answer("**#thescore:** **5.**"), 0),
            "label4": lambda n: (200, {}, _answer("It gives partial help.\nScore: 4"), 0),
            "malformed": lambda n: (200, {}, _answer("I would rate it somewhere around four."), 0),
            "six": lambda n: (200, {}, _answer("#thereason: off scale\n#thescore: 6"), 0),
            "rate_limited": lambda n: ((429, {"Retry-After": "0"}, {"error": {"message": "slow down"}}, 0)
                                       if n <= 2 else (200, {}, _answer("#thescore: 2"), 0)),
            "retry_after_ms": lambda n: ((429, {"retry-after-ms": "150"}, {"error": {"message": "slow"}}, 0)
                                         if n == 1 else (200, {}, _answer("#thescore: 4"), 0)),
            "flaky500": lambda n: ((500, {}, {"error": {"message": "boom"}}, 0)
                                   if n <= 2 else (200, {}, _answer("#thescore: 5"), 0)),
            "down": lambda n: (503, {}, {"error": {"message": "unavailable"}}, 0),
            "slow_once": lambda n: ((200, {}, _answer("#thescore: 3"), 1.5) if n == 1
                                    else (200, {}, _answer("#thescore: 3"), 0)),
            "slowish": lambda n: (200, {}, _answer("#thescore: 3"), 0.2),
            "bad_request": lambda n: (400, {}, {"error": {"message": "bad request"}}, 0),
            "refusal_partial": lambda n: (200, {}, _answer("#thereason: Gives part.\n#therefusal: partial\n"
                                                           "#thescore: 3"), 0),
        }

    def handle(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], Any, float]:
        text = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
        match = CASE_RE.search(text)
        case = match.group(1) if match else "score1"
        with self.lock:
            self.attempts[case] += 1
            n = self.attempts[case]
            self.requests.append({"case": case, "body": body, "headers": headers})
        return self.scripts[case](n)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAI

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self.send_response(404)
            self.end_headers()
            return
        fake = self.fake
        status, headers, payload, delay = fake.handle(body, {k.lower(): v for k, v in self.headers.items()})
        with fake.lock:
            fake.in_flight += 1
            fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
        if delay:
            time.sleep(delay)
        with fake.lock:
            fake.in_flight -= 1
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and hung up: that is the point of the slow case


def start_server() -> tuple[ThreadingHTTPServer, FakeOpenAI, str]:
    fake = FakeOpenAI()
    handler = type("Handler", (_Handler,), {"fake": fake})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, fake, f"http://127.0.0.1:{server.server_address[1]}/v1"
