"""Discrete-event driver: programs arrive, calls are issued, engines step.

Programs arrive as a Poisson process at ``rate`` programs/s (one explicit seed), the
first at t = 0, exactly as ``autellix replay`` draws them (:mod:`autellix.arrivals`).
A call is issued when all its parents have finished plus its tool delay, so the
loop is closed and dependencies always hold. The balancer picks an engine from the
engines' active-call counts. All engines share one process table, as the paper's
global table.

Event order is deterministic (:mod:`autellix.sim.events`: time, then
``STEP_END < ISSUE < ARRIVAL``, then push order), so an engine frees what a step
finished before new calls are placed at the same instant. Engines are driven only
through their public step interface (``schedule`` -> :class:`Step`, ``update``,
``shorten``); the driver keeps each engine's step in flight.

A call that can never fit an engine (more KV blocks than the engine has) fails with
a reason at issue, and its program fails; if ``max_sim_time`` passes, every
unfinished call is recorded as aborted. No call vanishes.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass, field

from autellix.arrivals import poisson_arrivals
from autellix.balancer import make_balancer
from autellix.metrics import CallRecord, ProgramRecord, RunSummary, program_record, summarize
from autellix.mlq import MultiLevelQueue
from autellix.policies import get_policy
from autellix.process_table import ProcessTable
from autellix.program import Program
from autellix.sim.block_pool import cdiv
from autellix.sim.call import EngineStats, SimCall
from autellix.sim.costmodel import CostModel, load_profile
from autellix.sim.engine import SimEngine
from autellix.sim.events import Arrival, EventKind, EventQueue, Issue, StepEnd
from autellix.sim.sim_config import SimConfig
from autellix.sim.step import Step


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
            "prefix_hit_rate": (sum(e.cached_tokens for e in self.engines) / prompt
                                if prompt else 0.0),
            "steps": sum(e.steps for e in self.engines),
            # no wall time here: a summary is a pure function of programs and config, so a
            # sweep run serially, in worker processes or on Ray writes identical files
            "sim_time": self.sim_time, "profile": self.profile,
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


class Simulation:
    """``arrivals``: program arrival times, one per program, in the programs' order
    (default: :func:`autellix.arrivals.poisson_arrivals` at ``cfg.rate`` from
    ``cfg.seed``, the schedule ``autellix replay`` draws too)."""

    def __init__(self, programs: list[Program], cfg: SimConfig, arrivals=None):
        self.cfg = cfg
        self.policy = get_policy(cfg.policy)
        self.profile = load_profile(cfg.engine.profile)
        self.cost = CostModel(self.profile)
        self.table = ProcessTable(rule=self.policy.table_rule, ttl=3600.0)
        self.engines = [SimEngine(i, cfg.engine, self.cost,
                                  MultiLevelQueue(self.policy, cfg.queue, self.table))
                        for i in range(cfg.n_engines)]
        self.balancer = make_balancer(cfg.balancer, cfg.n_engines)
        if arrivals is None:
            arrivals = poisson_arrivals(len(programs), cfg.rate, cfg.seed)
        if len(arrivals) != len(programs):
            raise ValueError(f"{len(arrivals)} arrival times for {len(programs)} programs")
        self.programs = programs
        self.arrivals = [float(a) for a in arrivals]
        self.events = EventQueue()
        self._next_hash = 1  # block hash ids: each call's fresh blocks take a range
        self._state: dict[str, _ProgState] = {}
        self._done_programs: list[ProgramRecord] = []
        self._calls: list[CallRecord] = []
        self._step_ver = [0] * cfg.n_engines
        self._steps: list[Step | None] = [None] * cfg.n_engines  # each engine's step in flight
        self.now = 0.0

    # ----------------------------------------------------------------- events
    def run(self, progress=None) -> SimResult:
        t0 = _time.perf_counter()
        events = self.events
        for p, a in zip(self.programs, self.arrivals, strict=True):
            events.push(a, EventKind.ARRIVAL, Arrival(p))
        limit = self.cfg.max_sim_time
        while events:
            ev = events.pop()
            t, payload = ev.time, ev.payload
            if limit is not None and t > limit:
                self.now = limit
                late = [e.payload.program for e in [ev, *events.drain()]
                        if isinstance(e.payload, Arrival)]
                self._abort_all(limit, late)
                break
            self.now = t
            if isinstance(payload, StepEnd):  # the kind orders events; the payload says which
                if payload.version == self._step_ver[payload.engine]:
                    self._on_step_end(payload.engine, t)
            elif isinstance(payload, Issue):
                self._issue(payload.program_id, payload.call_id, t)
            else:
                self._arrive(payload.program, t)
                backlog = self.cfg.max_backlog
                if backlog is not None and len(self._state) > backlog:
                    late = [e.payload.program for e in events.drain()
                            if isinstance(e.payload, Arrival)]
                    self._abort_all(t, late, f"backlog over {backlog} programs")
                    break
            if progress is not None:
                progress(len(self._done_programs))
        return SimResult(self.cfg, self._done_programs, self._calls,
                         [e.stats for e in self.engines], self.now,
                         _time.perf_counter() - t0, self.profile.name)

    def _arrive(self, p: Program, now: float) -> None:
        st = _ProgState(program=p, arrival=now, pending={c.id: len(c.parents) for c in p.calls},
                        children=p.children())
        if self.policy.clairvoyant:
            work = self.cost.single_call_seconds
            st.remaining_work = sum(work(c.new_prompt_tokens, c.output_tokens)
                                    for c in p.calls)
        self._state[p.id] = st
        for c in p.calls:
            if not c.parents:
                self.events.push(now + c.tool_delay, EventKind.ISSUE, Issue(p.id, c.id))

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
        blocks = self.engines[0].capacity_blocks
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
        sc = SimCall(key=f"{pid}/{cid}", program_id=pid, call_id=cid, prompt=call.prompt_tokens,
                     output=call.output_tokens, hashes=hashes, issue=now)
        st.active += 1
        eng.add(sc, now, remaining_work=st.remaining_work)
        if self._steps[idx] is not None:
            self._interrupt(idx, now)
        else:
            self._kick(idx, now)

    # ---------------------------------------------------------------- engines
    def _kick(self, idx: int, now: float) -> None:
        eng = self.engines[idx]
        step = eng.schedule(now)
        if self.cfg.check_invariants:
            eng.check()
        self._steps[idx] = step
        if step is not None:
            self._start(idx, step)

    def _start(self, idx: int, step: Step) -> None:
        self._step_ver[idx] += 1
        self._steps[idx] = step
        self.events.push(step.start + step.seconds, EventKind.STEP_END,
                         StepEnd(idx, self._step_ver[idx]))

    def _interrupt(self, idx: int, now: float) -> None:
        """Cut a multi-step decode run short at the step boundary at or after ``now``."""
        step = self._steps[idx]
        short = self.engines[idx].shorten(step, now) if step is not None else None
        if short is not None:
            self._start(idx, short)

    def _on_step_end(self, idx: int, now: float) -> None:
        eng = self.engines[idx]
        step, self._steps[idx] = self._steps[idx], None
        assert step is not None, "a step ended that was never started"
        for c in eng.update(step, now):
            self._complete(eng, c, now)
        if self.cfg.check_invariants:
            eng.check()
        self._kick(idx, now)

    def _complete(self, eng: SimEngine, c: SimCall, now: float) -> None:
        e = eng.finish_record(c, now)
        pid, cid = c.program_id, c.call_id
        st = self._state[pid]
        rec = CallRecord(pid, cid, c.issue, now, c.prompt, c.output, engine=str(eng.idx),
                         first_token=c.first_token, wait=e.wait, service=e.service,
                         preemptions=c.preemptions, cached_tokens=c.cached_tokens)
        self._calls.append(rec)
        st.records.append(rec)
        st.active -= 1
        call = st.program.call(cid)
        if self.policy.clairvoyant:
            st.remaining_work -= self.cost.single_call_seconds(call.new_prompt_tokens,
                                                               call.output_tokens)
        if not st.failed:
            for child in st.children[cid]:
                st.pending[child] -= 1
                if st.pending[child] == 0:
                    self.events.push(now + st.program.call(child).tool_delay, EventKind.ISSUE,
                                     Issue(pid, child))
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
                                     status="aborted",
                                     error="an earlier call of the program failed")
                    self._calls.append(rec)
                    st.records.append(rec)
        self._done_programs.append(program_record(p, st.records, st.arrival))
        del self._state[p.id]
        self.balancer.program_ended(p.id)
        self.table.end_program(p.id)

    def _abort_all(self, now: float, not_arrived: list,
                   reason: str = "simulation time limit reached") -> None:
        for p in not_arrived:  # submitted but never arrived before the limit
            self._state[p.id] = _ProgState(program=p, arrival=now, pending={}, children={},
                                           failed=True)
        for eng in self.engines:
            for c, e in eng.abort_all(now):
                pid = c.program_id
                rec = CallRecord(pid, c.call_id, c.issue, now, c.prompt, c.output,
                                 engine=str(eng.idx), wait=e.wait, service=e.service,
                                 status="aborted", error=reason)
                self._calls.append(rec)
                self._state[pid].records.append(rec)
                self._state[pid].active -= 1
        for st in list(self._state.values()):
            st.failed = True
            self._maybe_finish_program(st, now)


def simulate(programs: list[Program], cfg: SimConfig, progress=None) -> SimResult:
    return Simulation(programs, cfg).run(progress)
