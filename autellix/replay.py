"""Replay programs against any OpenAI-compatible endpoint (autellix gateway or plain vLLM).

Open-loop, like the paper (§6.1): program arrivals are Poisson at ``rate`` programs/s
(``numpy.random.default_rng(seed)``; the first program arrives at t = 0). Inside a
program a call is issued once all its parents have finished, plus its
``tool_delay``; a call whose parent failed is never issued.

Prompts. The engine must see the recorded token counts and the program's growing
shared context (so prefix caching behaves as in the trace), and the text must be the
same on every run and every endpoint, whatever the model answers. So prompts are
synthetic, one word per token, drawn from words that are single tokens both for
common BPE tokenizers and for the tiny CPU model's tokenizer:

* call ``c`` with first parent ``p``: ``shared = (prompt(p) + output(p))`` clipped or
  padded to ``c.shared_prompt_tokens`` words, then ``c.new_prompt_tokens`` new words;
* ``output(p)`` is a deterministic stand-in of ``p.output_tokens`` words, not the
  model's actual answer (random-weight models answer gibberish, and determinism
  keeps arms of a comparison identical); the cache still shares ``prompt(p)``.

Counts are approximate: the tokenizer adds BOS, the chat template adds a few tokens,
and a word may split on an unfamiliar tokenizer. ``prompt_tokens`` in the records
is the engine's ``usage`` count when reported, else the word count.

Fitting small engines: ``scale`` multiplies every token count (prompt and output)
first; then ``max_prompt_tokens`` keeps the first that many words of a longer prompt
(the prefix, so sharing survives) and ``max_output_tokens`` caps ``max_tokens``.
``max_model_len`` (the engine's) clips both so that prompt words + output + 16
tokens of slack fit; the slack covers BOS and the chat template on the tiny model,
whose tokenizer maps each word to one token. Other tokenizers may split words:
leave more room there (lower ``max_prompt_tokens``).

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
import math
import time
import uuid
import zlib
from dataclasses import dataclass
from typing import Callable

import httpx
import numpy as np

from autellix.metrics import CallRecord, ProgramRecord, program_record
from autellix.program import Call, Program

# each is one token (with its leading space) for the tiny model's tokenizer
# (autellix.vllm.tiny_model) and for common BPE vocabularies
WORDS = ("the", "a", "an", "of", "to", "in", "is", "and", "or", "not", "agent", "calls", "tool",
         "model", "again", "wait", "long", "first", "level", "engine", "program", "thread",
         "service", "result", "priority", "batch")


@dataclass
class ReplayProgress:
    calls_total: int
    programs_total: int
    calls_done: int = 0
    calls_failed: int = 0
    programs_done: int = 0


TOKEN_SLACK = 16  # BOS, chat template and tokenizer slack kept free under max_model_len


@dataclass(frozen=True)
class PromptShaping:
    scale: float = 1.0
    max_prompt_tokens: int | None = None
    max_output_tokens: int | None = None
    max_model_len: int | None = None

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError(f"scale must be > 0, got {self.scale}")
        for f in ("max_prompt_tokens", "max_output_tokens"):
            v = getattr(self, f)
            if v is not None and v < 1:
                raise ValueError(f"{f} must be >= 1, got {v}")
        if self.max_model_len is not None and self.max_model_len < TOKEN_SLACK + 2:
            raise ValueError(f"max_model_len must be >= {TOKEN_SLACK + 2}, got {self.max_model_len}")

    def n(self, tokens: int) -> int:
        return int(round(tokens * self.scale))

    def output(self, c: Call) -> int:
        o = max(1, self.n(c.output_tokens))
        if self.max_output_tokens:
            o = min(o, self.max_output_tokens)
        if self.max_model_len:  # leave at least one prompt word
            o = min(o, self.max_model_len - TOKEN_SLACK - 1)
        return o

    def prompt_limit(self, c: Call) -> int | None:
        limits = [x for x in (self.max_prompt_tokens,
                              self.max_model_len and self.max_model_len - TOKEN_SLACK - self.output(c))
                  if x]
        return max(1, min(limits)) if limits else None


class ProgramText:
    """Deterministic word-per-token prompts of one program (see module docstring)."""

    def __init__(self, program: Program, shaping: PromptShaping):
        self.p, self.s = program, shaping
        self._prompt: dict[str, list[int]] = {}

    def _words(self, n: int, key: str) -> list[int]:
        # seeded per (program, call, part): independent of the order calls are issued in
        rng = np.random.default_rng(zlib.crc32(f"{self.p.id}/{key}".encode()))
        return rng.integers(0, len(WORDS), size=max(0, n)).tolist()

    def prompt(self, c: Call) -> list[int]:
        if c.id in self._prompt:
            return self._prompt[c.id]
        shared_n, new_n = self.s.n(c.shared_prompt_tokens), self.s.n(c.new_prompt_tokens)
        if shared_n + new_n < 1:
            new_n = 1
        base: list[int] = []
        if c.parents:
            parent = self.p.call(c.parents[0])
            base = self.prompt(parent) + self._output(parent)
        shared = base[:shared_n] + self._words(shared_n - len(base), f"{c.id}/pad")
        words = shared + self._words(new_n, f"{c.id}/new")
        limit = self.s.prompt_limit(c)
        if limit:
            words = words[:limit]
        self._prompt[c.id] = words
        return words

    def _output(self, c: Call) -> list[int]:
        return self._words(self.s.output(c), f"{c.id}/out")

    def text(self, c: Call) -> str:
        return " ".join(WORDS[i] for i in self.prompt(c))


def poisson_arrivals(n: int, rate: float, seed: int) -> list[float]:
    if not rate > 0:
        raise ValueError(f"rate must be > 0 programs/s (inf: all at once), got {rate}")
    if math.isinf(rate):
        return [0.0] * n
    gaps = np.random.default_rng(seed).exponential(1.0 / rate, size=n)
    return [0.0] + np.cumsum(gaps[1:]).tolist() if n else []


def _root(endpoint: str) -> str:
    root = endpoint.rstrip("/")
    return root[:-3] if root.endswith("/v1") else root


async def _first_model(http: httpx.AsyncClient, root: str) -> str:
    r = await http.get(f"{root}/v1/models")
    r.raise_for_status()
    data = r.json().get("data") or []
    if not data:
        raise RuntimeError(f"{root}/v1/models lists no model")
    return data[0]["id"]


class _Replayer:
    def __init__(self, http, root, model, api, shaping, priority_mode, timeout, tag, progress):
        self.http, self.root, self.model, self.api = http, root, model, api
        self.shaping, self.priority_mode, self.timeout, self.tag = (
            shaping, priority_mode, timeout, tag)
        self.progress, self.t0 = progress, 0.0
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
                if c.tool_delay:
                    await asyncio.sleep(c.tool_delay)
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
        body = self.body(c, text.text(c), served)
        headers = {"X-Autellix-Program": f"{self.tag}{prog.id}", "X-Autellix-Thread": c.id}
        path = "/v1/chat/completions" if self.api == "chat" else "/v1/completions"
        rec = CallRecord(program_id=prog.id, call_id=c.id, issue=self.now(), finish=0.0,
                         prompt_tokens=words, output_tokens=0, engine=self.root)
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
            async for line in r.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                obj = json.loads(data)
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


async def replay_programs(programs: list[Program], endpoint: str, *, rate: float, seed: int,
                          model: str | None = None, api: str = "completions",
                          progress: Callable[[ReplayProgress], None] | None = None,
                          timeout: float = 300.0, scale: float = 1.0,
                          max_prompt_tokens: int | None = None,
                          max_output_tokens: int | None = None,
                          max_model_len: int | None = None, priority_mode: bool = False,
                          program_prefix: str | None = None,
                          ) -> tuple[list[ProgramRecord], list[CallRecord]]:
    """Replay ``programs`` open-loop; returns (program records, call records).

    Times in the records are seconds since the replay started. Program ids sent to
    the endpoint are prefixed with ``program_prefix`` (default: a fresh random tag) so
    two runs never share a process-table entry; records keep the original ids.
    """
    if api not in ("completions", "chat"):
        raise ValueError(f"api must be 'completions' or 'chat', got {api!r}")
    if not timeout > 0:
        raise ValueError("timeout must be > 0 seconds")
    shaping = PromptShaping(scale, max_prompt_tokens, max_output_tokens, max_model_len)
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
        if model is None:
            model = await _first_model(http, root)
        rp = _Replayer(http, root, model, api, shaping, priority_mode, timeout, tag, progress)
        rp.t0 = time.monotonic()
        report()
        records = await asyncio.gather(*(rp.program(p, a, snap, report)
                                         for p, a in zip(programs, arrivals)))
    order = {p.id: i for i, p in enumerate(programs)}
    calls = sorted(rp.calls, key=lambda c: (order[c.program_id], c.issue))
    return list(records), calls


def replay(programs: list[Program], endpoint: str, **kwargs):
    """Synchronous wrapper of :func:`replay_programs`."""
    return asyncio.run(replay_programs(programs, endpoint, **kwargs))
