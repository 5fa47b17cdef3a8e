"""Replay programs against any OpenAI-compatible endpoint (autellix gateway or plain vLLM).

Open-loop, like the paper (§6.1): program arrivals are Poisson at ``rate`` programs/s
(:func:`autellix.arrivals.poisson_arrivals`, shared with the simulator: the first
program arrives at t = 0). Inside a
program a call is issued once all its parents have finished, plus its
``tool_delay`` (capped at ``max_tool_delay`` when given: long tool runs and human
pauses can be cut for a quick run); a call whose parent failed is never issued.

Prompts (:mod:`autellix.replay_fit`): deterministic word-per-token text of the
recorded lengths that shares the program's growing context, so prefix caching
behaves as in the trace. ``scale`` multiplies every token count first;
``max_output_tokens`` caps ``max_tokens``.

Fitting to the endpoint. Before the first call the replayer reads ``GET /v1/models``:
the model, the context length vLLM reports there (``max_model_len``) and, from
autellix's gateway, the engines' policy and balancer. By default every call is fitted
to that context (or to ``max_model_len`` when given): the program's shared prefix is
kept and the oldest words after it are clipped; each call records how many words it
lost (``clipped_tokens``). With ``fit=False`` (``--no-fit``) a call that does not fit
fails without being sent, with a reason naming the option. An endpoint that reports
no length gets every prompt at its recorded length (``max_prompt_tokens`` still
clips). ``prompt_tokens`` in the records is the engine's ``usage`` count when
reported, else the word count.

Each call streams (``ignore_eos``, ``min_tokens = max_tokens``, ``stream_options.
include_usage``) to time the first token. It carries ``X-Autellix-Program`` /
``X-Autellix-Thread`` headers, which plain vLLM ignores; the body holds only fields
vLLM accepts. ``priority_mode=True`` adds ``priority`` = output tokens the program
has been served so far: the client-side "vllm-priority" baseline (needs a vLLM
server with ``--scheduling-policy priority``; ignored under FCFS).
Failed calls (HTTP error, engine error event, timeout) are recorded with status
``failed`` and the reason; every call is bounded by ``timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from autellix.arrivals import poisson_arrivals  # noqa: F401 - re-exported
from autellix.config import ConfigError
from autellix.errors import EngineError
from autellix.metrics import CallRecord, ProgramRecord, program_record
from autellix.program import Call, Program
from autellix.replay_fit import TOKEN_SLACK, WORDS, ProgramText, PromptShaping  # noqa: F401


@dataclass
class ReplayProgress:
    calls_total: int
    programs_total: int
    calls_done: int = 0
    calls_failed: int = 0
    programs_done: int = 0


@dataclass(frozen=True)
class EndpointInfo:
    """What ``GET /v1/models`` says about an endpoint."""

    model: str
    max_model_len: int | None = None  # vLLM reports it per model; None: not reported
    policy: str | None = None         # autellix's gateway: its engines' scheduling policy
    balancer: str | None = None       # autellix's gateway: its balancer
    engines: int | None = None


def _root(endpoint: str) -> str:
    root = endpoint.rstrip("/")
    return root[:-3] if root.endswith("/v1") else root


def _positive_int(x) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) and x > 0 else None


async def _endpoint_info(http: httpx.AsyncClient, root: str, model: str | None) -> EndpointInfo:
    """``GET /v1/models``; :class:`EngineError` when it cannot be read or names no model."""
    try:
        r = await http.get(f"{root}/v1/models")
        r.raise_for_status()
        doc = r.json()
    except (httpx.HTTPError, ValueError) as e:  # unreachable, an error status, or not JSON
        raise EngineError(f"cannot read {root}/v1/models: {type(e).__name__}: {e}") from e
    data = doc.get("data") if isinstance(doc, dict) else None
    if not data and model is None:
        raise EngineError(f"{root}/v1/models lists no model")
    data = [d for d in data or () if isinstance(d, dict)]
    entry = next((d for d in data if d.get("id") == model), None if model or not data else data[0])
    entry = entry or {}  # a model the endpoint does not list: no length known
    if model is None and "id" not in entry:
        raise EngineError(f"{root}/v1/models lists no model with an 'id'")
    meta = doc.get("autellix") if isinstance(doc, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    return EndpointInfo(model=model or entry["id"],
                        max_model_len=_positive_int(entry.get("max_model_len")),
                        policy=meta.get("policy") or None, balancer=meta.get("balancer") or None,
                        engines=_positive_int(meta.get("engines")))


def endpoint_info(endpoint: str, model: str | None = None, timeout: float = 10.0) -> EndpointInfo:
    """Read an endpoint's model, context length and (from the gateway) policy.

    Raises :class:`autellix.errors.EngineError` when the endpoint cannot be reached,
    answers with an error status or something that is not JSON, or names no model."""
    async def go():
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as http:
            return await _endpoint_info(http, _root(endpoint), model)

    return asyncio.run(go())


class _Replayer:
    def __init__(self, http, root, model, api, shaping, priority_mode, timeout, tag,
                 progress) -> None:
        self.http, self.root, self.model, self.api = http, root, model, api
        self.shaping, self.priority_mode, self.timeout, self.tag = (
            shaping, priority_mode, timeout, tag)
        self.progress, self.t0 = progress, 0.0
        self.max_tool_delay: float | None = None
        self.calls: list[CallRecord] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    async def program(self, prog: Program, arrival: float, snap: ReplayProgress, report):
        await asyncio.sleep(max(0.0, arrival - self.now()))
        text = ProgramText(prog, self.shaping)
        done = {c.id: asyncio.Event() for c in prog.calls}
        recs: dict[str, CallRecord] = {}
        served = [0]  # output tokens served so far (priority mode)
        gateway = [False]

        async def run(c: Call):
            try:
                for p in c.parents:
                    await done[p].wait()
                if any(recs.get(p) is None or recs[p].status != "completed" for p in c.parents):
                    return
                delay = c.tool_delay if self.max_tool_delay is None \
                    else min(c.tool_delay, self.max_tool_delay)
                if delay:
                    await asyncio.sleep(delay)
                rec, is_gw = await self.call(prog, c, text, served[0])
                gateway[0] |= is_gw
                recs[c.id] = rec
                served[0] += rec.output_tokens
                snap.calls_done += 1
                snap.calls_failed += rec.status != "completed"
                report()
            finally:
                done[c.id].set()

        await asyncio.gather(*(run(c) for c in prog.calls))
        calls = [recs[c.id] for c in prog.calls if c.id in recs]
        self.calls.extend(calls)
        if gateway[0]:  # free the gateway's table entry now instead of waiting for its TTL
            try:
                await self.http.delete(f"{self.root}/v1/programs/{self.tag}{prog.id}", timeout=5)
            except httpx.HTTPError:
                pass
        snap.programs_done += 1
        report()
        return program_record(prog, calls, arrival)

    def body(self, c: Call, text: str, served: int) -> dict:
        out = self.shaping.output(c)
        body = {"model": self.model, "max_tokens": out, "min_tokens": out, "ignore_eos": True,
                "stream": True, "stream_options": {"include_usage": True}}
        if self.api == "chat":
            body["messages"] = [{"role": "user", "content": text}]
        else:
            body["prompt"] = text
        if self.priority_mode:
            body["priority"] = int(served)
        return body

    async def call(self, prog: Program, c: Call, text: ProgramText, served: int):
        words = len(text.prompt(c))
        rec = CallRecord(program_id=prog.id, call_id=c.id, issue=self.now(), finish=0.0,
                         prompt_tokens=words, output_tokens=0, engine=self.root,
                         clipped_tokens=text.clipped(c))
        over = text.overflow(c)
        if over:  # fit=False: fail it here, with the fix, rather than send a certain 400
            rec.status, rec.finish = "failed", rec.issue
            rec.error = (f"context length: prompt {words} + output {self.shaping.output(c)} "
                         f"tokens exceed the endpoint's max_model_len "
                         f"{self.shaping.max_model_len} (less {TOKEN_SLACK} slack) by {over}; "
                         "--no-fit is set: drop it to clip prompts to fit")
            return rec, False
        body = self.body(c, text.text(c), served)
        headers = {"X-Autellix-Program": f"{self.tag}{prog.id}", "X-Autellix-Thread": c.id}
        path = "/v1/chat/completions" if self.api == "chat" else "/v1/completions"
        is_gw = False
        try:
            is_gw = await asyncio.wait_for(self._stream(path, body, headers, rec), self.timeout)
        except asyncio.TimeoutError:
            rec.status, rec.error = "failed", f"timed out after {self.timeout:g} s"
        except httpx.HTTPError as e:
            rec.status, rec.error = "failed", f"{type(e).__name__}: {e}"[:300]
        rec.finish = self.now()
        return rec, is_gw

    async def _stream(self, path, body, headers, rec: CallRecord) -> bool:
        async with self.http.stream("POST", self.root + path, json=body, headers=headers) as r:
            rec.engine = r.headers.get("x-autellix-engine", rec.engine)
            is_gw = "x-autellix-engine" in r.headers
            if r.status_code != 200:
                raw = (await r.aread()).decode(errors="replace")
                try:
                    msg = json.loads(raw)["error"]["message"]
                except Exception:
                    msg = raw
                rec.status, rec.error = "failed", f"HTTP {r.status_code}: {msg}"[:300]
                return is_gw
            chunks, usage = 0, None
            async for line in sse_lines(r.aiter_bytes()):
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    break
                try:
                    obj = json.loads(data)
                except ValueError as e:  # this call's stream is broken, not the replay
                    rec.status = "failed"
                    rec.error = (f"not an OpenAI event stream ({e}): "
                                 f"{data[:80].decode(errors='replace')!r}")[:300]
                    return is_gw
                if obj.get("error"):
                    err = obj["error"]
                    rec.status = "failed"
                    rec.error = str(err.get("message", err) if isinstance(err, dict) else err)[:300]
                    return is_gw
                if obj.get("choices"):
                    if rec.first_token is None:
                        rec.first_token = self.now()
                    chunks += 1
                if obj.get("usage"):
                    usage = obj["usage"]
            rec.output_tokens = int(usage["completion_tokens"]) if usage else chunks
            if usage and usage.get("prompt_tokens"):
                rec.prompt_tokens = int(usage["prompt_tokens"])
            return is_gw


async def sse_lines(chunks):
    """Lines of a server-sent event stream, as bytes without their line ending.

    Lines end at ``\\n``, ``\\r\\n`` or ``\\r`` only, as the SSE specification says
    (``bytes.splitlines`` splits there and nowhere else). Not httpx's ``aiter_lines``:
    it follows ``str.splitlines`` and also breaks at U+0085, U+2028 and U+2029, which
    JSON allows raw inside strings. A random-weight model emits them, and one broke an
    event in two in a real replay.
    """
    buf = b""
    async for chunk in chunks:
        buf += chunk
        lines = buf.splitlines(keepends=True)
        buf = b""
        # the last piece may continue in the next chunk (a lone \r may be half a \r\n)
        if lines and not lines[-1].endswith(b"\n"):
            buf = lines.pop()
        for line in lines:
            yield line.rstrip(b"\r\n")
    if buf:
        yield buf.rstrip(b"\r\n")


async def replay_programs(programs: list[Program], endpoint: str, *, rate: float, seed: int,
                          model: str | None = None, api: str = "completions",
                          progress: Callable[[ReplayProgress], None] | None = None,
                          timeout: float = 300.0, scale: float = 1.0,
                          max_prompt_tokens: int | None = None,
                          max_output_tokens: int | None = None,
                          max_model_len: int | None = None, fit: bool = True,
                          max_tool_delay: float | None = None,
                          priority_mode: bool = False, program_prefix: str | None = None,
                          ) -> tuple[list[ProgramRecord], list[CallRecord]]:
    """Replay ``programs`` open-loop; returns (program records, call records).

    ``max_model_len`` defaults to the length the endpoint reports in ``/v1/models``
    (read when ``model`` or ``max_model_len`` is not given; with ``model`` given, an
    endpoint that cannot answer is replayed as one that reports no length). ``fit``
    clips prompts to it, else calls over it fail unsent. Times in the records are
    seconds since the replay started. Program ids sent to the endpoint are prefixed
    with ``program_prefix`` (default: a fresh random tag) so two runs never share a
    process-table entry; records keep the original ids.
    """
    if api not in ("completions", "chat"):
        raise ConfigError(f"api must be 'completions' or 'chat', got {api!r}")
    if not timeout > 0:
        raise ConfigError("timeout must be > 0 seconds")
    if max_tool_delay is not None and not max_tool_delay >= 0:
        raise ConfigError(f"max_tool_delay must be >= 0 seconds, got {max_tool_delay}")
    PromptShaping(scale, max_prompt_tokens, max_output_tokens, max_model_len)  # validate early
    arrivals = poisson_arrivals(len(programs), rate, seed)
    tag = f"{uuid.uuid4().hex[:8]}-" if program_prefix is None else program_prefix
    root = _root(endpoint)
    snap = ReplayProgress(calls_total=sum(len(p.calls) for p in programs),
                          programs_total=len(programs))

    def report():
        if progress is not None:
            progress(snap)

    limits = httpx.Limits(max_connections=None, max_keepalive_connections=512)
    timeouts = httpx.Timeout(connect=10.0, read=timeout, write=timeout, pool=timeout)
    async with httpx.AsyncClient(timeout=timeouts, limits=limits, trust_env=False) as http:
        if model is None or max_model_len is None:
            try:
                info = await _endpoint_info(http, root, model)
            except EngineError:
                if model is None:
                    raise
                info = EndpointInfo(model=model)
            model, max_model_len = info.model, max_model_len or info.max_model_len
        shaping = PromptShaping(scale, max_prompt_tokens, max_output_tokens, max_model_len, fit)
        rp = _Replayer(http, root, model, api, shaping, priority_mode, timeout, tag, progress)
        rp.max_tool_delay = max_tool_delay
        rp.t0 = time.monotonic()
        report()
        records = await asyncio.gather(*(rp.program(p, a, snap, report)
                                         for p, a in zip(programs, arrivals, strict=True)))
    order = {p.id: i for i, p in enumerate(programs)}
    calls = sorted(rp.calls, key=lambda c: (order[c.program_id], c.issue))
    return list(records), calls


def replay(programs: list[Program], endpoint: str, **kwargs):
    """Synchronous wrapper of :func:`replay_programs`."""
    return asyncio.run(replay_programs(programs, endpoint, **kwargs))
