"""Request parsing for the gateway: OpenAI-style errors, validation, identity, size.

The gateway validates only what it must understand to route a call (the JSON shape,
``model``, ``messages``/``prompt``, ``stream``, ``vllm_xargs``, the identity fields) and
the commonest type errors, so a malformed call fails fast with a 400 in OpenAI's
error format instead of travelling to an engine. Everything else is passed through
untouched and left to the engine, whose 4xx answers are returned as they are.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from fastapi.responses import JSONResponse

from autellix.errors import AutellixError

MAX_ID_LEN = 256


class GatewayError(AutellixError):
    """An error answered to the client as ``{"error": {message, type, code, param}}``."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = (
            status, message, type_, code, param)

    def body(self) -> dict:
        return error_body(self.message, self.type, self.code, self.param)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status)


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "code": code, "param": param}}


async def send_json(send, status: int, obj, headers=()) -> None:
    """Answer a raw ASGI request with a JSON body."""
    body = json.dumps(obj).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


def bad_request(message: str, param: str | None = None,
                code: str = "invalid_value") -> GatewayError:
    return GatewayError(400, message, "invalid_request_error", code, param)


def parse_json_object(raw: bytes) -> dict:
    if not raw.strip():
        raise bad_request("request body is empty; send a JSON object", code="invalid_json")
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise bad_request(f"request body is not valid JSON: {e}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise bad_request(f"request body must be a JSON object, got {type(body).__name__}",
                          code="invalid_json")
    return body


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(float(v)))


def _check_prompt(prompt) -> None:
    ok = (isinstance(prompt, str)
          or (isinstance(prompt, list) and prompt and (
              all(isinstance(x, str) for x in prompt)
              or all(_is_int(x) for x in prompt)
              or all(isinstance(x, list) and x and all(_is_int(t) for t in x) for x in prompt))))
    if not ok:
        raise bad_request("'prompt' must be a string, a non-empty list of strings, a list of "
                          "token ids, or a list of token-id lists", param="prompt")


def _check_messages(messages) -> None:
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty list of message objects",
                          param="messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise bad_request(f"messages[{i}] must be an object", param=f"messages[{i}]")
        if not isinstance(m.get("role"), str):
            raise bad_request(f"messages[{i}].role must be a string", param=f"messages[{i}].role")
        content = m.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise bad_request(f"messages[{i}].content must be a string, a list of parts or null",
                              param=f"messages[{i}].content")


_INT_FIELDS = ("max_tokens", "max_completion_tokens", "n", "min_tokens", "seed", "logprobs",
               "top_logprobs", "priority")
_NUMBER_FIELDS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
_BOOL_FIELDS = ("stream", "ignore_eos", "echo")


def validate_call(kind: str, body: dict) -> None:
    """Raise a 400 :class:`GatewayError` for a call the gateway cannot route."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required and must be a non-empty string", param="model",
                          code="missing_required_parameter" if model is None else "invalid_type")
    if kind == "chat":
        if "messages" not in body:
            raise bad_request("'messages' is required", param="messages",
                              code="missing_required_parameter")
        _check_messages(body["messages"])
    else:
        if "prompt" not in body:
            raise bad_request("'prompt' is required", param="prompt",
                              code="missing_required_parameter")
        _check_prompt(body["prompt"])
    for f in _BOOL_FIELDS:
        if f in body and body[f] is not None and not isinstance(body[f], bool):
            raise bad_request(f"'{f}' must be a boolean", param=f, code="invalid_type")
    for f in _INT_FIELDS:
        if f in body and body[f] is not None and not _is_int(body[f]):
            raise bad_request(f"'{f}' must be an integer", param=f, code="invalid_type")
    for f in ("max_tokens", "max_completion_tokens", "n"):
        if _is_int(body.get(f)) and body[f] < 1:
            raise bad_request(f"'{f}' must be >= 1", param=f)
    for f in _NUMBER_FIELDS:
        if f in body and body[f] is not None and not _is_number(body[f]):
            raise bad_request(f"'{f}' must be a number", param=f, code="invalid_type")
    so = body.get("stream_options")
    if so is not None and not isinstance(so, dict):
        raise bad_request("'stream_options' must be an object", param="stream_options",
                          code="invalid_type")
    xa = body.get("vllm_xargs")
    if xa is not None and not isinstance(xa, dict):
        raise bad_request("'vllm_xargs' must be an object", param="vllm_xargs", code="invalid_type")


@dataclass(frozen=True, slots=True)
class Identity:
    program_id: str
    thread_id: str
    one_call: bool  # no program given: the call is a program of its own
    source: str = "none"  # which convention named the program (see ``identify``)


def check_id(value: str, what: str) -> str:
    value = value.strip()
    if not value or len(value) > MAX_ID_LEN or not value.isprintable():
        raise bad_request(f"{what} must be 1-{MAX_ID_LEN} printable characters", param=what)
    return value


def _body_str(body: dict, key: str, param: str | None = None):
    v = body.get(key)
    if v is not None and not isinstance(v, str):
        raise bad_request(f"'{param or key}' must be a string", param=param or key,
                          code="invalid_type")
    return v


def _agentic_context(body: dict) -> tuple[str | None, str | None]:
    """``vllm_xargs.agentic_context``: a program id string, or an object naming it by
    ``program_id`` (else ``session_id``, else ``task_id``), with an optional
    ``thread_id``. The vLLM Router RFC leaves the object's other fields to the router;
    the gateway forwards the whole object to the engine untouched."""
    xa = body.get("vllm_xargs")
    ctx = xa.get("agentic_context") if isinstance(xa, dict) else None
    if ctx is None or isinstance(ctx, str):
        return ctx, None
    if not isinstance(ctx, dict):
        raise bad_request("'vllm_xargs.agentic_context' must be a string or an object",
                          param="vllm_xargs.agentic_context", code="invalid_type")
    pid = next((ctx[k] for k in ("program_id", "session_id", "task_id") if ctx.get(k) is not None),
               None)
    for v, what in ((pid, "program_id"), (ctx.get("thread_id"), "thread_id")):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (str, int))):
            raise bad_request(f"'vllm_xargs.agentic_context.{what}' must be a string",
                              param=f"vllm_xargs.agentic_context.{what}", code="invalid_type")
    tid = ctx.get("thread_id")
    return (None if pid is None else str(pid)), (None if tid is None else str(tid))


IDENTITY_PRECEDENCE = ("header:x-autellix-program", "vllm_xargs.agentic_context",
                       "body:session_id", "header:x-session-id",
                       "header:x-gateway-inference-fairness-id", "body:user")


def identify(headers, body: dict, call_id: str, program_header: str = "x-autellix-program",
             thread_header: str = "x-autellix-thread") -> Identity:
    """A call's program: the first of these conventions that the call carries.

    1. header ``X-Autellix-Program`` (autellix's own, and the client library's);
    2. ``vllm_xargs.agentic_context`` (vLLM Router's program-scheduling RFC);
    3. body ``session_id`` (vLLM's field; vLLM itself prefers it to the header);
    4. header ``X-Session-ID`` (vLLM's multi-turn benchmark, the production-stack router);
    5. header ``x-gateway-inference-fairness-id`` (llm-d);
    6. body ``user`` (OpenAI's end-user id);
    7. none: the call is a program of its own, which ends with it.

    Explicit program ids come first, session ids next, and the coarse ones last: a
    fairness id or a ``user`` usually covers many programs of one tenant or person,
    so they only stand in when nothing finer is given. The thread is the thread
    header, else ``agentic_context.thread_id``, else the call itself.
    """
    thread = headers.get(thread_header)
    thread = check_id(thread, thread_header) if thread is not None else None
    session, user = _body_str(body, "session_id"), _body_str(body, "user")  # typed, always
    ctx_pid, ctx_tid = _agentic_context(body)
    if thread is None and ctx_tid is not None:
        thread = check_id(ctx_tid, "vllm_xargs.agentic_context.thread_id")
    thread = thread or call_id
    pid = headers.get(program_header)
    if pid is not None:
        return Identity(check_id(pid, program_header), thread, False, IDENTITY_PRECEDENCE[0])
    if ctx_pid is not None:
        return Identity(check_id(ctx_pid, "vllm_xargs.agentic_context"), thread, False,
                        IDENTITY_PRECEDENCE[1])
    candidates = ((session, "session_id"), (headers.get("x-session-id"), "x-session-id"),
                  (headers.get("x-gateway-inference-fairness-id"),
                   "x-gateway-inference-fairness-id"), (user, "user"))
    for (value, what), source in zip(candidates, IDENTITY_PRECEDENCE[2:], strict=True):
        if value is not None:
            return Identity(check_id(value, what), thread, False, source)
    return Identity(f"call-{call_id}", thread, True)


def _text_len(content) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):  # content parts: count the text ones
        return sum(len(p.get("text") or "") for p in content if isinstance(p, dict))
    return 0


def prompt_tokens(kind: str, body: dict, chars_per_token: float = 4.0) -> int:
    """Approximate prompt length in tokens (token ids count exactly, text by chars)."""
    if kind == "chat":
        chars = sum(_text_len(m.get("content")) for m in body["messages"])
        return max(1, math.ceil(chars / chars_per_token))
    p = body["prompt"]
    if isinstance(p, str):
        return max(1, math.ceil(len(p) / chars_per_token))
    if all(_is_int(x) for x in p):
        return len(p)
    if all(isinstance(x, list) for x in p):  # a batch of token-id prompts: the longest
        return max(len(x) for x in p)
    return max(1, math.ceil(max(len(x) for x in p) / chars_per_token))
