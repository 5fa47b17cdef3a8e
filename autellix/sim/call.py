"""A call inside a simulated engine, and the engine's counters.

A call's *state* (waiting, running, swapped) lives on its queue entry
(:class:`autellix.mlq.QEntry`, ``state``) and nowhere else; a ``SimCall`` holds only
what the engine computes with: token counts, its KV blocks, and its timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass

from autellix.mlq import QEntry


@dataclass(slots=True, eq=False)
class SimCall:
    key: str            # the queue's id for the call, unique across programs
    program_id: str
    call_id: str
    prompt: int
    output: int
    hashes: list        # block hash ids of the whole sequence (prompt, then output)
    issue: float
    computed: int = 0   # tokens with KV computed
    generated: int = 0  # output tokens produced
    n_hashed: int = 0   # leading blocks of ``hashes`` held as shared, hashed blocks
    private: int = 0    # other blocks held (partial last block, unsealed chunks)
    host_tokens: int = 0  # tokens whose KV waits in host memory (swap preemption)
    first_token: float | None = None
    preemptions: int = 0
    cached_tokens: int = 0  # prompt tokens served from the prefix cache at first admission
    seq_len: int = 0    # prompt + generated, kept in step with ``generated``
    gen_at_admit: int = 0  # ``generated`` when last admitted (progress guard)
    admit_seq: int = 0  # order of the latest admission
    # its queue entry (set when queued): read every step, so not looked up by key
    entry: QEntry = None  # type: ignore[assignment]  # SimEngine.add sets it

    def __post_init__(self) -> None:
        self.seq_len = self.prompt + self.generated

    @property
    def held(self) -> int:
        return self.n_hashed + self.private


@dataclass
class EngineStats:
    steps: int = 0
    busy: float = 0.0
    preemptions: int = 0
    swapped_bytes: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    decisions: int = 0
