"""Replay prompts: deterministic word-per-token text, fitted to the engine's context.

The engine must see the recorded token counts and the program's growing shared
context (so prefix caching behaves as in the trace), and the text must be the same
on every run and every endpoint, whatever the model answers. So prompts are
synthetic, one word per token, drawn from words that are single tokens both for
common BPE tokenizers and for the tiny CPU model's tokenizer:

* call ``c`` with first parent ``p``: ``shared = (full(p) + output(p))`` cut or
  padded to ``c.shared_prompt_tokens`` words, then ``c.new_prompt_tokens`` new words;
  this is the call's *full* prompt, at the recorded length;
* ``output(p)`` is a deterministic stand-in of ``p.output_tokens`` words, not the
  model's actual answer (random-weight models answer gibberish, and determinism
  keeps arms of a comparison identical).

**Fitting** (on by default). A call fits when its prompt words, its ``max_tokens``
and :data:`TOKEN_SLACK` (BOS and the chat template on the tiny model, whose
tokenizer maps each word to one token) fit in ``max_model_len``; the prompt is also
held to ``max_prompt_tokens`` when given. A call that does not fit is clipped the
way an agent trims its history:

* the program's *shared prefix* is kept: the words every call of the program starts
  with (its first call's prompt: system prompt, tools, task), up to half the window;
* the *oldest* words after it are dropped (the earliest turns), the newest kept;
* when a call clips, it drops down to half the free window, not to the brim, and its
  children inherit the same cut. So a child's prompt is again its parent's fitted
  prompt plus the parent's output plus its own new words, and prefix caching keeps
  working until the window fills again (clipping to the brim would shift the kept
  tail on every call and leave only the prefix cacheable).

A fitted prompt is ``full[:head] + full[head + dropped:]``; the call records
``dropped`` as its clipped tokens. It depends only on the call's chain of first
parents, never on the order calls are issued in. With ``fit=False`` nothing is
clipped for the context; :meth:`ProgramText.overflow` says by how much a call is
too long so the replayer can fail it without sending it. Counts are approximate on
other tokenizers (a word may split): leave more room there (``max_prompt_tokens``).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from autellix.config import ConfigError
from autellix.program import Call, Program

# each is one token (with its leading space) for the tiny model's tokenizer
# (autellix.vllm.tiny_model) and for common BPE vocabularies
WORDS = ("the", "a", "an", "of", "to", "in", "is", "and", "or", "not", "agent", "calls", "tool",
         "model", "again", "wait", "long", "first", "level", "engine", "program", "thread",
         "service", "result", "priority", "batch")

TOKEN_SLACK = 16  # BOS, chat template and tokenizer slack kept free under max_model_len


@dataclass(frozen=True)
class PromptShaping:
    """How recorded token counts become a request: scale, caps, and the context fit.

    ``scale`` multiplies every token count first; ``max_output_tokens`` caps
    ``max_tokens``; ``max_prompt_tokens`` and ``max_model_len`` bound the prompt (see
    the module docstring). ``fit=False`` leaves prompts over ``max_model_len`` whole.
    """

    scale: float = 1.0
    max_prompt_tokens: int | None = None
    max_output_tokens: int | None = None
    max_model_len: int | None = None
    fit: bool = True

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ConfigError(f"scale must be > 0, got {self.scale}")
        for f in ("max_prompt_tokens", "max_output_tokens"):
            v = getattr(self, f)
            if v is not None and v < 1:
                raise ConfigError(f"{f} must be >= 1, got {v}")
        if self.max_model_len is not None and self.max_model_len < TOKEN_SLACK + 2:
            raise ConfigError(f"max_model_len must be >= {TOKEN_SLACK + 2}, "
                              f"got {self.max_model_len}")

    def n(self, tokens: int) -> int:
        return int(round(tokens * self.scale))

    def output(self, c: Call) -> int:
        o = max(1, self.n(c.output_tokens))
        if self.max_output_tokens:
            o = min(o, self.max_output_tokens)
        if self.max_model_len:  # leave at least one prompt word
            o = min(o, self.max_model_len - TOKEN_SLACK - 1)
        return o

    def context_room(self, c: Call) -> int | None:
        """Prompt words that fit in ``max_model_len`` beside the call's output."""
        if not self.max_model_len:
            return None
        return max(1, self.max_model_len - TOKEN_SLACK - self.output(c))

    def prompt_limit(self, c: Call) -> int | None:
        """Prompt words the call is clipped to (``None``: no limit)."""
        limits = [x for x in (self.max_prompt_tokens, self.fit and self.context_room(c)) if x]
        return max(1, min(limits)) if limits else None

    def head_cap(self) -> int | None:
        """The most words of a program's shared prefix kept: half the window."""
        window = [x for x in (self.max_prompt_tokens,
                              self.fit and self.max_model_len and self.max_model_len - TOKEN_SLACK)
                  if x]
        return max(1, min(window) // 2) if window else None


@dataclass(frozen=True)
class _Fit:
    full: list[int]   # the call's prompt at its recorded length
    words: list[int]  # what is sent: full[:head] + full[head + dropped:]
    head: int         # the program's shared prefix kept at the front
    dropped: int      # words cut just after the head


class ProgramText:
    """Deterministic word-per-token prompts of one program (see module docstring)."""

    def __init__(self, program: Program, shaping: PromptShaping):
        self.p, self.s = program, shaping
        self._fit: dict[str, _Fit] = {}

    def _words(self, n: int, key: str) -> list[int]:
        # seeded per (program, call, part): independent of the order calls are issued in
        rng = np.random.default_rng(zlib.crc32(f"{self.p.id}/{key}".encode()))
        return rng.integers(0, len(WORDS), size=max(0, n)).tolist()

    def _build(self, c: Call) -> _Fit:
        if c.id in self._fit:
            return self._fit[c.id]
        shared_n, new_n = self.s.n(c.shared_prompt_tokens), self.s.n(c.new_prompt_tokens)
        if shared_n + new_n < 1:
            new_n = 1
        parent, base = None, []
        if c.parents:
            parent = self._build(self.p.call(c.parents[0]))
            base = parent.full + self._output(self.p.call(c.parents[0]))
        full = base[:shared_n] + self._words(shared_n - len(base), f"{c.id}/pad") \
            + self._words(new_n, f"{c.id}/new")
        # the program's shared prefix: what this call still has in common with its root
        common = len(full) if parent is None else min(parent.head, shared_n, len(base))
        head, dropped = common, 0
        if parent is not None and parent.dropped and shared_n >= parent.head + parent.dropped \
                and len(base) >= parent.head + parent.dropped:
            head, dropped = parent.head, parent.dropped  # inherit the parent's cut
        limit, cap = self.s.prompt_limit(c), self.s.head_cap()
        if cap is not None and not dropped:
            head = min(head, cap)
        if limit is not None and len(full) - dropped > limit:
            head = min(head, limit)
            free = limit - head
            keep = min(free, max(free // 2, new_n))  # newest words kept after the head
            dropped = len(full) - head - keep
        fit = _Fit(full, full[:head] + full[head + dropped:], head, dropped)
        self._fit[c.id] = fit
        return fit

    def full(self, c: Call) -> list[int]:
        """The call's prompt at its recorded (scaled) length, before any clipping."""
        return self._build(c).full

    def prompt(self, c: Call) -> list[int]:
        """The words sent for the call (fitted)."""
        return self._build(c).words

    def clipped(self, c: Call) -> int:
        """Prompt words the fit dropped from the call."""
        f = self._build(c)
        return len(f.full) - len(f.words)

    def overflow(self, c: Call) -> int:
        """Words by which the sent prompt exceeds the context (> 0 only with ``fit=False``)."""
        room = self.s.context_room(c)
        return 0 if room is None else max(0, len(self.prompt(c)) - room)

    def _output(self, c: Call) -> list[int]:
        return self._words(self.s.output(c), f"{c.id}/out")

    def text(self, c: Call) -> str:
        return " ".join(WORDS[i] for i in self.prompt(c))
