"""BFCL multi-turn entries → ReAct programs (single-threaded chains).

Format (JSON Lines, despite the ``.json`` names): one object per line,
``{"id", "question": [[{"role", "content"}, ...] per user turn], "involved_classes", ...}``.
Optional inputs: the ``possible_answer`` file of the same category
(``{"id", "ground_truth": [[call strings] per turn]}``) and the
``multi_turn_func_doc`` directory (one JSON function doc per line per class).

Program model (a ReAct agent; the paper counts every LLM step):

* turn ``t`` takes ``len(ground_truth[t]) + 1`` steps when answers are given
  (one step per function call, then a reply to the user), else
  ``steps_per_turn`` (default 3, about the paper's 10.75 calls over BFCL's
  3.7 turns). Ground truth gives 5.7 calls over 3.7 turns, i.e. 9.4 steps.
* the first call's new prompt is the tool schemas (the JSON docs of the
  entry's ``involved_classes``, or its own ``function`` list) plus the first
  user turn; a turn's first step adds the user's messages; later steps add a
  tool observation of ``observation_tokens`` (20; BFCL's tools are simulated
  and their outputs are not stored). Each call shares the previous prompt and
  output.
* output: the ground-truth call's text for tool steps, else ``output_tokens``
  (34, the paper's mean).
* tool delays: not recorded; ``tool_delay`` seconds (default 0) before each
  step that follows a tool call.

:func:`find_bfcl_data` locates ``bfcl_eval/data`` inside an installed
``bfcl-eval`` package (the PyPI wheel ships all BFCL v4 data) without importing it.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from autellix.program import Call, Program, TraceError

from .tokens import as_text, require_file, token_counter

# involved_classes → function-doc file (facts from BFCL's executable backend config)
FUNC_DOC_FILES = {
    "GorillaFileSystem": "gorilla_file_system.json", "MathAPI": "math_api.json",
    "MessageAPI": "message_api.json", "TwitterAPI": "posting_api.json",
    "TicketAPI": "ticket_api.json", "TradingBot": "trading_bot.json",
    "TravelAPI": "travel_booking.json", "VehicleControlAPI": "vehicle_control.json",
    "WebSearchAPI": "web_search.json", "MemoryAPI_kv": "memory_kv.json",
    "MemoryAPI_vector": "memory_vector.json", "MemoryAPI_rec_sum": "memory_rec_sum.json",
}


def find_bfcl_data() -> Path | None:
    """``.../bfcl_eval/data`` of an installed ``bfcl-eval``, or None."""
    try:
        spec = importlib.util.find_spec("bfcl_eval")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        data = Path(root) / "data"
        if data.is_dir():
            return data
    return None


def bfcl_files(category: str = "multi_turn_base", data_dir: Path | None = None) -> dict[str, Path]:
    """Paths of one category's questions, answers and function docs (newest version)."""
    data = data_dir or find_bfcl_data()
    if data is None:
        raise TraceError("bfcl-eval is not installed (pip install bfcl-eval) "
                         "and no data_dir was given")
    found = sorted(data.glob(f"BFCL_v*_{category}.json"))
    if not found:
        raise TraceError(f"no BFCL file for category {category!r} under {data}")
    question = found[-1]
    answer = data / "possible_answer" / question.name
    return {"questions": question, "answers": answer if answer.is_file() else None,
            "func_docs": data / "multi_turn_func_doc"}


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as fp:
        for lineno, line in enumerate(fp, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise TraceError(f"{path}:{lineno}: not valid JSON ({e.msg}); BFCL files "
                                 "hold one JSON object per line") from None
            if not isinstance(obj, dict) or "id" not in obj:
                raise TraceError(f"{path}:{lineno}: expected an object with an 'id'")
            rows.append(obj)
    return rows


def _docs_text(entry: dict, func_doc_dir: Path | None, cache: dict) -> str:
    if isinstance(entry.get("function"), list):
        return json.dumps(entry["function"])
    if func_doc_dir is None:
        return ""
    parts = []
    for cls in entry.get("involved_classes", []):
        name = FUNC_DOC_FILES.get(cls)
        if name is None or not (func_doc_dir / name).is_file():
            raise TraceError(f"no function docs for class {cls!r} in {func_doc_dir}")
        if name not in cache:
            cache[name] = (func_doc_dir / name).read_text(encoding="utf-8")
        parts.append(cache[name])
    return "\n".join(parts)


def load_bfcl(path: str | Path, tokenizer=None, limit: int | None = None, *,
              answers_path: str | Path | None = None, func_doc_dir: str | Path | None = None,
              steps_per_turn: int = 3, observation_tokens: int = 20, output_tokens: int = 34,
              tool_delay: float = 0.0) -> list[Program]:
    path = require_file(path)
    count = token_counter(tokenizer)
    answers = {}
    if answers_path is not None:
        answers = {str(a["id"]): a.get("ground_truth")
                   for a in _read_jsonl(require_file(answers_path))}
    doc_dir = Path(func_doc_dir) if func_doc_dir is not None else None
    doc_cache: dict = {}
    programs = []
    for entry in _read_jsonl(path):
        eid, turns = str(entry["id"]), entry.get("question")
        if not isinstance(turns, list) or not all(isinstance(t, list) for t in turns):
            raise TraceError(f"{path}: entry {eid!r}: 'question' must be a list of turns "
                             "(lists of {role, content} messages)")
        truth = answers.get(eid)
        if truth is not None and len(truth) != len(turns):
            raise TraceError(f"{path}: entry {eid!r} has {len(turns)} turns but "
                             f"{len(truth)} ground-truth turns")
        pending = count(_docs_text(entry, doc_dir, doc_cache))
        calls: list[Call] = []
        for t, turn in enumerate(turns):
            for m in turn:
                if not isinstance(m, dict) or "content" not in m:
                    raise TraceError(f"{path}: entry {eid!r} turn {t}: messages need 'content'")
                pending += count(as_text(m["content"]))
            tool_calls = [str(c) for c in truth[t]] if truth is not None else None
            n_steps = len(tool_calls) + 1 if tool_calls is not None else steps_per_turn
            for s in range(n_steps):
                prev = calls[-1] if calls else None
                shared = prev.prompt_tokens + prev.output_tokens if prev else 0
                new = pending if s == 0 else observation_tokens
                is_tool = tool_calls is not None and s < len(tool_calls)
                out = max(count(tool_calls[s]), 1) if is_tool else output_tokens
                calls.append(Call(id=f"s{len(calls)}", parents=(prev.id,) if prev else (),
                                  shared_prompt_tokens=shared,
                                  new_prompt_tokens=max(new, 1 - shared),
                                  output_tokens=out, tool_delay=tool_delay if s > 0 else 0.0))
            pending = 0
        if calls:
            programs.append(Program(id=f"bfcl-{eid}", calls=tuple(calls), workload="react"))
        if limit is not None and len(programs) >= limit:
            break
    return programs
