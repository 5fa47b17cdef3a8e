"""Replay reads server-sent events as the SSE specification defines their lines, so a
model's text can hold any character JSON allows raw (U+2028, U+2029, U+0085: a
random-weight model emits them), and a broken stream fails its own call only."""

from __future__ import annotations

import asyncio
import json

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from test_gateway_helpers import ServerThread

from autellix.program import Call, Program
from autellix.replay import replay, sse_lines

pytestmark = pytest.mark.timeout(60)
ODD_TEXT = "a\u2028b\u2029c\x85d\x1ce"  # each one a line break to str.splitlines


def _lines(chunks):
    async def gen():
        for c in chunks:
            yield c

    async def collect():
        return [x async for x in sse_lines(gen())]

    return asyncio.run(collect())


def _event(obj) -> bytes:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n".encode()


def test_sse_lines_end_only_at_cr_lf_or_crlf_wherever_the_chunks_are_cut():
    event = {"choices": [{"text": ODD_TEXT}]}
    stream = _event(event) + b"data: x\r\n\r\ndata: y\r\rdata: z"
    want = [_event(event)[:-2], b"", b"data: x", b"", b"data: y", b"", b"data: z"]
    assert "\u2028".encode() in want[0]  # raw, as vLLM sends it
    assert _lines([stream]) == want
    for cut in range(1, len(stream)):  # every split into two chunks, \r\n halves included
        assert _lines([stream[:cut], stream[cut:]]) == want, cut
    assert _lines([bytes([b]) for b in stream]) == want  # one byte at a time


class OddEngine:
    """A fake vLLM streaming text full of raw JSON-legal line separators, cut into
    chunks in the middle of events; program ``broken`` gets one malformed event."""

    def __init__(self):
        app = FastAPI()

        @app.get("/v1/models")
        async def models():
            return {"object": "list", "data": [{"id": "tiny", "max_model_len": 4096}]}

        @app.post("/v1/completions")
        async def completions(request: Request):
            n = int((await request.json())["max_tokens"])
            broken = request.headers.get("x-autellix-program", "").endswith("broken")
            return StreamingResponse(self._stream(n, broken), media_type="text/event-stream")

        self.server = ServerThread(app).start()
        self.url = self.server.url

    async def _stream(self, n: int, broken: bool):
        body = b"".join(_event({"choices": [{"index": 0, "text": ODD_TEXT}]}) for _ in range(n))
        if broken:
            body += b'data: {"choices": [{"text": "cut\n\n'
        body += _event({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": n}})
        body += b"data: [DONE]\n\n"
        for i in range(0, len(body), 7):  # 7-byte chunks: events and characters split
            yield body[i:i + 7]


@pytest.fixture(scope="module")
def engine():
    e = OddEngine()
    yield e
    e.server.stop()


def _program(pid: str) -> Program:
    return Program(id=pid, calls=(Call(id="c0", new_prompt_tokens=4, output_tokens=6),
                                  Call(id="c1", parents=("c0",), shared_prompt_tokens=10,
                                       new_prompt_tokens=4, output_tokens=3)))


def test_text_with_unicode_line_separators_replays_completely(engine):
    progs, calls = replay([_program("p0"), _program("p1")], engine.url, rate=100.0, seed=0)
    assert [p.status for p in progs] == ["completed", "completed"]
    assert sorted(c.output_tokens for c in calls) == [3, 3, 6, 6]
    assert all(c.status == "completed" and c.first_token is not None for c in calls)


def test_a_malformed_event_fails_its_call_with_the_reason_and_the_rest_still_run(engine):
    progs, calls = replay([_program("ok"), _program("broken")], engine.url, rate=100.0, seed=0)
    status = {p.program_id: p.status for p in progs}
    assert status["ok"] == "completed" and status["broken"] != "completed"
    bad = [c for c in calls if c.status == "failed"]
    assert len(bad) == 1 and "not an OpenAI event stream" in bad[0].error
