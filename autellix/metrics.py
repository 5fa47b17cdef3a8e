"""Metrics: plain records plus pure functions. Presentation lives in the CLI.

Definitions (identical for the simulator and for HTTP replay):

* **call**: ``ttft = first_token - issue``; ``e2e = finish - issue``; ``wait`` is the
  time the call spent queued (simulator: measured; replay: not observable, so
  ``None``).
* **program**: ``e2e = finish - arrival`` (the critical path: the last call's
  completion); **token latency** = ``e2e / output tokens over all calls``, the
  paper's program-level token latency (s/token); **waiting share** = summed call
  waits over summed call times, when waits are known.
* **run**: mean/p50/p95/p99 of token latency and e2e over completed programs;
  completed programs per second = completed / (last finish - first arrival).
* **throughput at a latency target**: on a latency-vs-rate curve, the largest
  arrival rate whose (linearly interpolated) latency is at or under the target.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from itertools import pairwise

import numpy as np

STATUSES = ("completed", "failed", "aborted")


@dataclass(slots=True)
class CallRecord:
    program_id: str
    call_id: str
    issue: float
    finish: float
    prompt_tokens: int
    output_tokens: int
    engine: str = ""
    first_token: float | None = None
    wait: float | None = None
    service: float | None = None
    preemptions: int = 0
    cached_tokens: int = 0
    status: str = "completed"
    error: str = ""
    clipped_tokens: int = 0  # prompt tokens replay cut to fit the engine's context

    @property
    def e2e(self) -> float:
        return self.finish - self.issue

    @property
    def ttft(self) -> float | None:
        return None if self.first_token is None else self.first_token - self.issue

    @property
    def itl(self) -> float | None:
        """Mean inter-token latency after the first token."""
        if self.first_token is None or self.output_tokens < 2:
            return None
        return (self.finish - self.first_token) / (self.output_tokens - 1)


@dataclass(slots=True)
class ProgramRecord:
    program_id: str
    workload: str
    kind: str
    arrival: float
    finish: float
    n_calls: int
    output_tokens: int
    wait: float | None = None
    call_time: float = 0.0
    status: str = "completed"

    @property
    def e2e(self) -> float:
        return self.finish - self.arrival

    @property
    def token_latency(self) -> float:
        return self.e2e / max(1, self.output_tokens)

    @property
    def waiting_share(self) -> float | None:
        if self.wait is None or self.call_time <= 0:
            return None
        return self.wait / self.call_time

    def to_row(self) -> dict:
        d = asdict(self)
        d.update(e2e=self.e2e, token_latency=self.token_latency, waiting_share=self.waiting_share)
        return d


def program_record(program, calls: list[CallRecord], arrival: float) -> ProgramRecord:
    """Fold a program's call records into its program record."""
    status = "completed"
    if any(c.status == "failed" for c in calls):
        status = "failed"
    elif any(c.status == "aborted" for c in calls) or len(calls) < len(program.calls):
        status = "aborted"
    waits = [c.wait for c in calls if c.wait is not None]
    return ProgramRecord(
        program_id=program.id, workload=program.workload, kind=program.kind, arrival=arrival,
        finish=max((c.finish for c in calls), default=arrival), n_calls=len(calls),
        output_tokens=sum(c.output_tokens for c in calls if c.status == "completed"),
        wait=float(sum(waits)) if len(waits) == len(calls) else None,
        call_time=float(sum(c.e2e for c in calls)), status=status)


def percentiles(xs, ps=(50, 95, 99)) -> dict[str, float]:
    arr = np.asarray(list(xs), dtype=float)
    if arr.size == 0:
        return {"mean": math.nan, **{f"p{p}": math.nan for p in ps}}
    out = {"mean": float(arr.mean())}
    for p in ps:
        out[f"p{p}"] = float(np.percentile(arr, p))
    return out


@dataclass
class RunSummary:
    engine: str
    policy: str
    balancer: str
    rate: float
    n_programs: int
    completed: int
    failed: int
    aborted: int
    token_latency: dict
    e2e: dict
    programs_per_s: float
    waiting_share: float | None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def summarize(programs: list[ProgramRecord], *, engine: str, policy: str, balancer: str,
              rate: float, extra: dict | None = None) -> RunSummary:
    done = [p for p in programs if p.status == "completed"]
    span = (max(p.finish for p in done) - min(p.arrival for p in programs)) if done else 0.0
    shares = [p.waiting_share for p in done if p.waiting_share is not None]
    return RunSummary(
        engine=engine, policy=policy, balancer=balancer, rate=rate, n_programs=len(programs),
        completed=len(done), failed=sum(p.status == "failed" for p in programs),
        aborted=sum(p.status == "aborted" for p in programs),
        token_latency=percentiles(p.token_latency for p in done),
        e2e=percentiles(p.e2e for p in done),
        programs_per_s=len(done) / span if span > 0 else 0.0,
        waiting_share=float(np.mean(shares)) if shares else None, extra=dict(extra or {}))


def throughput_at_latency(rates, latencies, target: float) -> float:
    """Largest rate whose interpolated latency is <= target on a curve sampled at ``rates``.

    Returns 0 when even the lowest rate misses the target, and the highest rate when
    every sampled point meets it (a lower bound: the curve was not pushed far enough).
    """
    pts = sorted((float(r), float(lat)) for r, lat in zip(rates, latencies, strict=True))
    if not pts or not (pts[0][1] <= target):
        return 0.0
    best = pts[0][0]
    for (r0, l0), (r1, l1) in pairwise(pts):
        if l1 <= target and l0 <= target:
            best = r1
            continue
        if l0 <= target < l1 or (math.isnan(l1) and l0 <= target):
            if math.isnan(l1) or l1 == l0:
                return r0
            return r0 + (target - l0) * (r1 - r0) / (l1 - l0)
        break
    return best


def throughput_ratio(ours: float, base: float) -> float:
    if base <= 0:
        return math.inf if ours > 0 else math.nan
    return ours / base
