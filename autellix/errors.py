"""The one base of the errors autellix raises for what a user gave it.

Every error that a user's input can cause (a configuration value, a program or
trace file, an engine or endpoint that cannot be started or reached) is an
:class:`AutellixError`; the CLI prints such an error as one line and exits
non-zero, and lets anything else (a bug) surface with its traceback.

The subclasses keep the built-in base they had before this module existed, so
``except ValueError`` and ``except RuntimeError`` go on catching them:

* :class:`autellix.config.ConfigError` (``ValueError``): an invalid setting.
* :class:`autellix.program.TraceError` (``ValueError``): a malformed program,
  workload or trace file.
* :class:`autellix.gateway.config.GatewayConfigError` (``ValueError``): an
  invalid gateway setting.
* :class:`autellix.balancer.NoEngineAvailable` (``RuntimeError``): every engine
  is down or excluded.
* :class:`autellix.gateway.parsing.GatewayError`: a request the gateway answers
  with an OpenAI-style error.
* :class:`EngineError` (``RuntimeError``): an engine that does not start, or an
  endpoint that cannot be reached or does not answer as an OpenAI endpoint.
"""

from __future__ import annotations


class AutellixError(Exception):
    """Base of every error autellix raises for bad input; the message says why."""


class EngineError(AutellixError, RuntimeError):
    """An engine did not start, or an endpoint cannot be reached or understood."""


__all__ = ["AutellixError", "EngineError"]
