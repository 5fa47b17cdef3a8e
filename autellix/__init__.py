"""autellix: program-aware LLM serving for AI agents (Autellix, arXiv 2502.13965).

The core (programs, process table, policies, multi-level queue, balancer,
simulator, metrics) is pure Python and imports without vLLM. The vLLM scheduler
plug-in lives in :mod:`autellix.vllm` and imports vLLM lazily.
"""

from autellix.errors import AutellixError, EngineError

__version__ = "0.1.0"

__all__ = ["AutellixError", "EngineError", "__version__"]
