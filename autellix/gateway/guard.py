"""The gateway's front door, a plain ASGI middleware: API keys and size limits.

It runs before any routing or parsing, so a request that is too large or not
authorised costs almost nothing and never reaches the JSON parser or an engine.

* **API keys** (``api_keys``; ``autellix gateway --api-key`` or the
  ``AUTELLIX_API_KEY`` environment variable): every ``/v1/...`` request needs
  ``Authorization: Bearer <key>`` (what the OpenAI SDK sends), else 401
  ``invalid_api_key``. Keys are compared with :func:`hmac.compare_digest` against
  every configured key, so the time taken does not reveal how much of a guess
  matched. ``/health`` and ``/metrics`` stay open for probes and scrapers, as in
  vLLM's own ``--api-key``. The client's ``Authorization`` is still forwarded, so
  engines started with the same key accept the call.
* **Header size** (``max_header_bytes``, default 64 KiB): names plus values of all
  headers; over it, 431.
* **Body size** (``max_body_bytes``, default 32 MiB: a 128k-token prompt is about
  0.5 MB of text, so this leaves room for images): a ``Content-Length`` over it is
  refused before the body is read; a chunked body is counted as it arrives and
  refused once it passes the limit. Either way, 413. The body read here is handed
  on to the app, which then sees the client's later messages (a disconnect) as usual.
"""

from __future__ import annotations

import hmac

from autellix.gateway.parsing import error_body, send_json


async def send_error(send, status: int, message: str, type_: str, code: str,
                     headers: tuple = ()) -> None:
    await send_json(send, status, error_body(message, type_, code), headers)


def key_matches(given: bytes, keys: tuple[bytes, ...]) -> bool:
    ok = False
    for k in keys:  # every key is compared: no early exit on a match
        ok |= hmac.compare_digest(given, k)
    return ok


class Guard:
    def __init__(self, app, *, api_keys=(), max_body_bytes: int, max_header_bytes: int):
        self.app = app
        self.keys = tuple(k.encode() for k in api_keys)
        self.max_body = max_body_bytes
        self.max_header = max_header_bytes

    def __getattr__(self, name):  # ``app.state`` and friends reach the wrapped app
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = scope["headers"]
        size, length, auth = 0, None, None
        for name, value in headers:
            size += len(name) + len(value)
            if name == b"content-length":
                length = value
            elif name == b"authorization":
                auth = value
        if size > self.max_header:
            return await send_error(send, 431, f"request headers total {size} bytes, over the "
                                    f"gateway's limit of {self.max_header} (max_header_bytes)",
                                    "invalid_request_error", "headers_too_large")
        if self.keys and scope["path"].startswith("/v1/"):
            given = auth[7:].strip() if auth and auth[:7].lower() == b"bearer " else b""
            if not key_matches(given, self.keys):
                return await send_error(
                    send, 401, "missing or invalid API key: send 'Authorization: Bearer <key>'",
                    "invalid_request_error", "invalid_api_key",
                    ((b"www-authenticate", b"Bearer"),))
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        if length is not None and length.isdigit() and int(length) > self.max_body:
            return await self._too_large(send, int(length))
        chunks, total, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client left before sending it all
                return
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_body:
                return await self._too_large(send, total)
            chunks.append(chunk)
            more = message.get("more_body", False)
        first = {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        async def replay():
            nonlocal first
            if first is not None:
                m, first = first, None
                return m
            return await receive()

        return await self.app(scope, replay, send)

    async def _too_large(self, send, size: int) -> None:
        await send_error(send, 413, f"request body of {size}+ bytes is over the gateway's limit "
                         f"of {self.max_body} (max_body_bytes)", "invalid_request_error",
                         "body_too_large", ((b"connection", b"close"),))
