"""Per-step records of the plug-in: batch composition and duration, as JSON lines.

Enabled by the ``step_log`` setting (a file path; the engine's pid is appended when
the path contains ``{pid}``). One line per charged step::

    {"t": 12.34, "dt": 0.0123, "prefill_tokens": 512, "prefill_seqs": 1,
     "decode_seqs": 7, "context_tokens": 9120, "prefill_attention": 786432,
     "sampled": 8, "scheduled_tokens": 519, "running": 8, "waiting": 3}

``t`` is the step's start (the engine's monotonic clock), ``dt`` the engine-seconds
charged for it (the same number the queue charges). ``context_tokens`` sums the
attention context of the step's decodes (their computed tokens), which is what the
cost model's decode-attention term multiplies; ``prefill_tokens`` counts the new
prompt tokens of chunks in the step, ``prefill_attention`` their sum of new tokens
times sequence length after the chunk (the cost model's prefill-attention term),
``sampled`` the sequences that sample a token (decodes, and chunks that complete a
prompt). ``autellix profile`` fits a cost model to these
lines, so its durations are the engine's own, not a client's. ``running`` and
``waiting`` count the engine's unfinished requests at the step's end (before vLLM
retires the step's finished ones): the scheduler's own view, with none of the lag of
the API server's Prometheus gauges, which a saturated machine can leave at zero for
seconds.

Other lines are events of one call, on the same clock::

    {"t": 12.40, "event": "arrived", "request": "cmpl-4b1e-0", "program": "L", "level": 4}
    {"t": 12.90, "event": "evicted", "request": "cmpl-4b1e-0", "program": "L", "level": 5}
    {"t": 14.02, "event": "finished", "request": "cmpl-4b1e-0", "program": "L",
     "status": "FINISHED_LENGTH_CAPPED", "output_tokens": 1000}

They let a test or a benchmark read what the *engine* did and when. Times seen by a
client include the API server's backlog: on a saturated 2-core machine it relayed
outputs seconds late, in bursts. Readers that fit step costs skip lines without
``dt``.
"""

from __future__ import annotations

import json
import os


class StepLog:
    def __init__(self, path: str):
        self.path = path.replace("{pid}", str(os.getpid()))
        self._fp = open(self.path, "a", buffering=1)  # noqa: SIM115 - lives with the engine

    def record(self, start: float, dt: float, scheduled: dict, requests: dict,
               running: int) -> None:
        prefill = pseqs = dseqs = ctx = es = sampled = 0
        for rid, n in scheduled.items():
            req = requests.get(rid)
            # schedule() has already advanced num_computed_tokens by this step's tokens
            if req is not None and req.num_computed_tokens - n < req.num_prompt_tokens:
                prefill += n
                pseqs += 1
                es += n * req.num_computed_tokens  # new tokens x sequence length after
                sampled += req.num_computed_tokens >= req.num_prompt_tokens
            else:
                dseqs += 1
                sampled += 1
                ctx += (req.num_computed_tokens - n) if req is not None else 0
        self._fp.write(json.dumps({
            "t": round(start, 6), "dt": round(dt, 7), "prefill_tokens": prefill,
            "prefill_seqs": pseqs, "decode_seqs": dseqs, "context_tokens": ctx,
            "prefill_attention": es, "sampled": sampled,
            "scheduled_tokens": sum(scheduled.values()), "running": running,
            "waiting": len(requests) - running}) + "\n")

    def event(self, t: float, kind: str, request_id: str, program: str | None,
              **fields) -> None:
        self._fp.write(json.dumps({"t": round(t, 6), "event": kind, "request": request_id,
                                   "program": program, **fields}) + "\n")

    def close(self) -> None:
        self._fp.close()
