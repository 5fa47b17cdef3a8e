"""Client library: run any OpenAI-SDK code as one autellix program (Autellix §2, Fig. 8).

Starting a program registers it with the gateway (``POST /v1/programs``); every call
made through the session's clients carries ``X-Autellix-Program`` (and, from
:meth:`ProgramSession.thread`, ``X-Autellix-Thread``); leaving the block ends the
program (``DELETE /v1/programs/{id}``), also when the block raises::

    with autellix.client.program(base_url="http://127.0.0.1:18400") as p:
        p.client.chat.completions.create(model="tiny", messages=[...])

    async with autellix.client.aprogram(base_url=...) as p:
        await p.client.chat.completions.create(...)

    @autellix.client.program_fn(base_url=...)
    def agent(question, *, client):          # one program per invocation
        return client.chat.completions.create(...)

Anything that accepts an OpenAI client (LangGraph/LangChain, DSPy, ...) can use
``p.client``; libraries that only take headers can use ``p.headers``. An existing
client is wrapped with ``client.with_options(default_headers=...)``, so its own
settings (API key, timeouts, retries) are kept. Ending a program is best effort: if
the gateway is unreachable at exit, the program expires by TTL there.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging

import httpx
import openai

from autellix.errors import EngineError

PROGRAM_HEADER = "X-Autellix-Program"
THREAD_HEADER = "X-Autellix-Thread"
log = logging.getLogger("autellix.client")


def _root(base_url, client) -> str:
    if base_url is None:
        if client is None:
            raise ValueError("give base_url (the gateway, e.g. http://127.0.0.1:18400) or client")
        base_url = str(client.base_url)
    root = str(base_url).rstrip("/")
    return root[:-3] if root.endswith("/v1") else root


def _start_body(program_id):
    return {"id": program_id} if program_id is not None else {}


def _started_id(resp: httpx.Response) -> str:
    if resp.status_code >= 400:
        raise EngineError(f"gateway refused to start the program ({resp.status_code}): "
                          f"{resp.text[:200]}")
    return resp.json()["id"]


class _Session:
    def __init__(self, root: str, program_id: str, client, api_key: str):
        self.root, self.id, self._api_key = root, program_id, api_key
        self.headers = {PROGRAM_HEADER: program_id}
        self._base = client

    def _wrap(self, client, thread: str | None):
        headers = dict(self.headers)
        if thread is not None:
            headers[THREAD_HEADER] = thread
        return client.with_options(default_headers=headers)


class ProgramSession(_Session):
    """A live program: ``client`` (sync), ``async_client``, ``headers``, ``thread()``."""

    def __init__(self, root, program_id, client, api_key) -> None:
        super().__init__(root, program_id, client, api_key)
        if client is None:
            client = openai.OpenAI(base_url=root + "/v1", api_key=api_key)
        self.client: openai.OpenAI = self._wrap(client, None)
        self._async: openai.AsyncOpenAI | None = None

    @property
    def async_client(self) -> openai.AsyncOpenAI:
        if self._async is None:
            self._async = openai.AsyncOpenAI(base_url=self.root + "/v1", api_key=self._api_key,
                                             default_headers=self.headers)
        return self._async

    def thread(self, thread_id: str) -> openai.OpenAI:
        """A client whose calls are tagged as thread ``thread_id`` of this program."""
        return self._wrap(self.client, thread_id)


class AsyncProgramSession(_Session):
    """A live program with an ``openai.AsyncOpenAI`` ``client``."""

    def __init__(self, root, program_id, client, api_key) -> None:
        super().__init__(root, program_id, client, api_key)
        if client is None:
            client = openai.AsyncOpenAI(base_url=root + "/v1", api_key=api_key)
        self.client: openai.AsyncOpenAI = self._wrap(client, None)

    def thread(self, thread_id: str) -> openai.AsyncOpenAI:
        return self._wrap(self.client, thread_id)


@contextlib.contextmanager
def program(base_url: str | None = None, client: openai.OpenAI | None = None,
            program_id: str | None = None, *, api_key: str = "EMPTY", timeout: float = 10.0):
    """Start a program on the gateway for the ``with`` block; end it on exit."""
    root = _root(base_url, client)
    with httpx.Client(timeout=timeout, trust_env=False) as http:
        pid = _started_id(http.post(f"{root}/v1/programs", json=_start_body(program_id)))
        session = ProgramSession(root, pid, client, api_key)
        try:
            yield session
        finally:
            try:
                r = http.delete(f"{root}/v1/programs/{pid}")
                if r.status_code not in (200, 404):
                    log.warning("ending program %s: gateway answered %s", pid, r.status_code)
            except httpx.HTTPError as e:
                log.warning("could not end program %s: %s", pid, e)


@contextlib.asynccontextmanager
async def aprogram(base_url: str | None = None, client: openai.AsyncOpenAI | None = None,
                   program_id: str | None = None, *, api_key: str = "EMPTY",
                   timeout: float = 10.0):
    """Async form of :func:`program`; ``p.client`` is an ``openai.AsyncOpenAI``."""
    root = _root(base_url, client)
    async with httpx.AsyncClient(timeout=timeout, trust_env=False) as http:
        pid = _started_id(await http.post(f"{root}/v1/programs", json=_start_body(program_id)))
        session = AsyncProgramSession(root, pid, client, api_key)
        try:
            yield session
        finally:
            try:
                r = await http.delete(f"{root}/v1/programs/{pid}")
                if r.status_code not in (200, 404):
                    log.warning("ending program %s: gateway answered %s", pid, r.status_code)
            except httpx.HTTPError as e:
                log.warning("could not end program %s: %s", pid, e)


def program_fn(base_url: str | None = None, client=None, *, arg: str = "client", **kwargs):
    """Decorator: each invocation of the function is one program.

    The program's client is passed as keyword ``arg`` (default ``client``) unless the
    caller passes one. Coroutine functions get an ``AsyncOpenAI`` client.
    """

    def deco(fn):
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def awrapper(*a, **kw):
                async with aprogram(base_url, client, **kwargs) as p:
                    kw.setdefault(arg, p.client)
                    return await fn(*a, **kw)
            return awrapper

        @functools.wraps(fn)
        def wrapper(*a, **kw):
            with program(base_url, client, **kwargs) as p:
                kw.setdefault(arg, p.client)
                return fn(*a, **kw)
        return wrapper

    return deco


__all__ = ["program", "aprogram", "program_fn", "ProgramSession", "AsyncProgramSession",
           "PROGRAM_HEADER", "THREAD_HEADER"]
