"""Discrete-event driver: programs arrive, calls are issued, engines step.

Programs arrive as a Poisson process at ``rate`` programs/s (one explicit seed).
A call is issued when all its parents have finished plus its tool delay, so the
loop is closed and dependencies always hold. The balancer picks an engine from the
engines' active-call counts. All engines share one process table, as the paper's
global table.

Event order is deterministic: the heap breaks ties by (time, class, sequence) with
classes ``STEP_END < ISSUE < ARRIVAL``, so an engine frees what a step finished
before new calls are placed at the same instant.

A call that can never fit an engine (more KV blocks than the engine has) fails with
a reason at issue, and its program fails; if ``max_sim_time`` passes, every
unfinished call is recorded as aborted. No call vanishes.
"""

from __future__ import annotations

import heapq
import itertools
import time as _time
from dataclasses import dataclass, field

import numpy as np

from autellix.balancer import make_balancer
from autellix.metrics import CallRecord, ProgramRecord, RunSummary, program_record, summarize
from autellix.mlq import MultiLevelQueue
from autellix.policies import get_policy
from autellix.process_table import ProcessTable
from autellix.program import Program
from autellix.sim.costmodel import CostModel, load_profile
from autellix.sim.block_pool import cdiv
from autellix.sim.engine import EngineStats, SimCall, SimEngine
from autellix.sim.sim_config import SimConfig

STEP_END, ISSUE, ARRIVAL = 0, 1, 2


@dataclass
class SimResult:
    config: SimConfig
    programs: list[ProgramRecord]
    calls: list[CallRecord]
    engines: list[EngineStats]
    sim_time: float
    wall_time: float
    profile: str = ""

    def summary(self) -> RunSummary:
        busy = sum(e.busy for e in self.engines)
        prompt = sum(e.prompt_tokens for e in self.engines)
        extra = {
            "utilization": busy / (self.sim_time * len(self.engines)) if self.sim_time else 0.0,
            "preemptions": sum(e.preemptions for e in self.engines),
            "swapped_bytes": sum(e.swapped_bytes for e in self.engines),
            "prefix_hit_rate": sum(e.cached_tokens for e in self.engines) / prompt if prompt else 0.0,
            "steps": sum(e.steps for e in self.engines),
            "sim_time": self.sim_time, "wall_time": self.wall_time, "profile": self.profile,
            "n_engines": len(self.engines),
        }
        return summarize(self.programs, engine="sim", policy=self.config.policy,
                         balancer=self.config.balancer, rate=self.config.rate, extra=extra)


@dataclass
class _ProgState:
    program: Program
    arrival: float
    pending: dict
    children: dict
    hashes: dict = field(default_factory=dict)
    records: list = field(default_factory=list)
    active: int = 0
    failed: bool = False
    remaining_work: float = 0.0


def poisson_arrivals(n: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    return np.cumsum(rng.exponential(1.0 / rate, size=n))


class Simulation:
    def __init__(self, programs: list[Program], cfg: SimConfig):
        self.cfg = cfg
        self.policy = get_policy(cfg.policy)
        self.profile = load_profile(cfg.engine.profile)
        self.cost = CostModel(self.profile)
        self.table = ProcessTable(rule=self.policy.table_rule, ttl=3600.0)
        self.engines = [SimEngine(i, cfg.engine, self.cost,
                                  MultiLevelQueue(self.policy, cfg.queue, self.table))
                        for i in range(cfg.n_engines)]
        self.balancer = make_balancer(cfg.balancer, cfg.n_engines)
        rng = np.random.default_rng(cfg.seed)
        arrivals = poisson_arrivals(len(programs), cfg.rate, rng)
        self.programs = programs
        self._arrivals = arrivals
        self._heap: list = []
        self._seq = itertools.count()
        self._next_hash = 1  # block hash ids: each call's fresh blocks take a range
        self._state: dict[str, _ProgState] = {}
        self._done_programs: list[ProgramRecord] = []
        self._calls: list[CallRecord] = []
        self._step_ver = [0] * cfg.n_engines
        self._step_info: list[tuple | None] = [None] * cfg.n_engines
        self.now = 0.0

    # ----------------------------------------------------------------- events
    def _push(self, t: float, cls: int, payload) -> None:
        heapq.heappush(self._heap, (t, cls, next(self._seq), payload))

    def run(self, progress=None) -> SimResult:
        t0 = _time.perf_counter()
        for p, a in zip(self.programs, self._arrivals):
            self._push(float(a), ARRIVAL, p)
        limit = self.cfg.max_sim_time
        while self._heap:
            t, cls, _, payload = heapq.heappop(self._heap)
            if limit is not None and t > limit:
                self.now = limit
                late = [pl for (_, c, _, pl) in [(t, cls, 0, payload)] + self._heap if c == ARRIVAL]
                self._abort_all(limit, late)
                break
            self.now = t
            if cls == STEP_END:
                idx, ver = payload
                if ver == self._step_ver[idx]:
                    self._on_step_end(idx, t)
            elif cls == ISSUE:
                self._issue(*payload, t)
            else:
                self._arrive(payload, t)
            if progress is not None:
                progress(len(self._done_programs))
        return SimResult(self.cfg, self._done_programs, self._calls,
                         [e.stats for e in self.engines], self.now,
                         _time.perf_counter() - t0, self.profile.name)

    def _arrive(self, p: Program, now: float) -> None:
        st = _ProgState(program=p, arrival=now, pending={c.id: len(c.parents) for c in p.calls},
                        children=p.children())
        if self.policy.clairvoyant:
            st.remaining_work = sum(self.cost.single_call_seconds(c.new_prompt_tokens, c.output_tokens)
                                    for c in p.calls)
        self._state[p.id] = st
        for c in p.calls:
            if not c.parents:
                self._push(now + c.tool_delay, ISSUE, (p.id, c.id))

    def _issue(self, pid: str, cid: str, now: float) -> None:
        st = self._state.get(pid)
        if st is None:  # its program already failed; the call was recorded as aborted
            return
        call = st.program.call(cid)
        B = self.cfg.engine.block_size
        total = call.prompt_tokens + call.output_tokens
        inherited: list = []
        if call.parents:
            inherited = st.hashes[call.parents[0]][: call.shared_prompt_tokens // B]
        fresh = max(0, cdiv(total, B) - len(inherited))
        hashes = inherited + list(range(self._next_hash, self._next_hash + fresh))
        self._next_hash += fresh
        st.hashes[cid] = hashes
        blocks = self.engines[0].kv.total
        if cdiv(total, B) > blocks:
            rec = CallRecord(pid, cid, now, now, call.prompt_tokens, call.output_tokens,
                             status="failed", error=f"call needs {cdiv(total, B)} KV blocks; "
                             f"the engine holds {blocks}")
            self._calls.append(rec)
            st.records.append(rec)
            st.failed = True
            self._maybe_finish_program(st, now)
            return
        loads = [e.active() for e in self.engines]
        idx = self.balancer.choose(pid, call.prompt_tokens, loads)
        eng = self.engines[idx]
        sc = SimCall(key=f"{pid}/{cid}", pid=pid, prompt=call.prompt_tokens,
                     output=call.output_tokens, hashes=hashes, issue=now)
        st.active += 1
        eng.add(sc, now, remaining_work=st.remaining_work)
        if eng.busy:
            self._interrupt(idx, now)
        else:
            self._kick(idx, now)

    # ---------------------------------------------------------------- engines
    def _kick(self, idx: int, now: float) -> None:
        eng = self.engines[idx]
        dt = eng.start_step(now, float("inf"))
        if self.cfg.check_invariants:
            eng.check()
        if dt <= 0:
            eng.busy = False
            self._step_info[idx] = None
            return
        eng.busy = True
        self._step_ver[idx] += 1
        self._step_info[idx] = (now, dt)
        self._push(now + dt, STEP_END, (idx, self._step_ver[idx]))

    def _interrupt(self, idx: int, now: float) -> None:
        """Cut a multi-step decode run short at the step boundary at or after ``now``."""
        eng = self.engines[idx]
        info = self._step_info[idx]
        if info is None or not eng._ff or eng._k <= 1:
            return
        start, _ = info
        r = len(eng._batch)
        ctx = sum(c.computed + 1 for c in eng._batch)
        lo, hi = 1, eng._k
        while lo < hi:
            mid = (lo + hi) // 2
            if start + self.cost.decode_run_seconds(r, ctx, mid) >= now:
                hi = mid
            else:
                lo = mid + 1
        if lo >= eng._k:
            return
        eng._k = lo
        dt = self.cost.decode_run_seconds(r, ctx, lo)
        self._step_ver[idx] += 1
        self._step_info[idx] = (start, dt)
        self._push(start + dt, STEP_END, (idx, self._step_ver[idx]))

    def _on_step_end(self, idx: int, now: float) -> None:
        eng = self.engines[idx]
        start, dt = self._step_info[idx]
        done = eng.end_step(now, dt)
        eng.busy = False
        for c in done:
            self._complete(eng, c, now)
        if self.cfg.check_invariants:
            eng.check()
        self._kick(idx, now)

    def _complete(self, eng: SimEngine, c: SimCall, now: float) -> None:
        e = eng.finish_record(c, now)
        pid, cid = c.key.split("/", 1)
        st = self._state[pid]
        rec = CallRecord(pid, cid, c.issue, now, c.prompt, c.output, engine=str(eng.idx),
                         first_token=c.first_token, wait=e.wait, service=e.service,
                         preemptions=c.preemptions, cached_tokens=c.cached_tokens)
        self._calls.append(rec)
        st.records.append(rec)
        st.active -= 1
        call = st.program.call(cid)
        if self.policy.clairvoyant:
            st.remaining_work -= self.cost.single_call_seconds(call.new_prompt_tokens, call.output_tokens)
        if not st.failed:
            for child in st.children[cid]:
                st.pending[child] -= 1
                if st.pending[child] == 0:
                    self._push(now + st.program.call(child).tool_delay, ISSUE, (pid, child))
        self._maybe_finish_program(st, now)

    def _maybe_finish_program(self, st: _ProgState, now: float) -> None:
        p = st.program
        if st.active:
            return
        if not st.failed and len(st.records) < len(p.calls):
            return
        if st.failed:
            issued = {r.call_id for r in st.records}
            for c in p.calls:
                if c.id not in issued:
                    rec = CallRecord(p.id, c.id, now, now, c.prompt_tokens, c.output_tokens,
                                     status="aborted", error="an earlier call of the program failed")
                    self._calls.append(rec)
                    st.records.append(rec)
        self._done_programs.append(program_record(p, st.records, st.arrival))
        del self._state[p.id]
        self.balancer.program_ended(p.id)
        self.table.end_program(p.id)

    def _abort_all(self, now: float, not_arrived: list) -> None:
        for p in not_arrived:  # submitted but never arrived before the limit
            self._state[p.id] = _ProgState(program=p, arrival=now, pending={}, children={},
                                           failed=True)
        for eng in self.engines:
            for c in list(eng.calls.values()):
                if c.running:
                    eng._preempt(c, now)
                e = eng.mlq.finish(c.key, now)
                pid, cid = c.key.split("/", 1)
                rec = CallRecord(pid, cid, c.issue, now, c.prompt, c.output, engine=str(eng.idx),
                                 wait=e.wait, service=e.service, status="aborted",
                                 error="simulation time limit reached")
                self._calls.append(rec)
                self._state[pid].records.append(rec)
                self._state[pid].active -= 1
                del eng.calls[c.key]
                eng.waiting.pop(c.key, None)
        for st in list(self._state.values()):
            st.failed = True
            self._maybe_finish_program(st, now)


def simulate(programs: list[Program], cfg: SimConfig, progress=None) -> SimResult:
    return Simulation(programs, cfg).run(progress)
