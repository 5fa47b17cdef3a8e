"""The vLLM 0.32 adapter: the Autellix scheduler plug-in and engine launch helpers.

Nothing here imports vLLM at package import time, so ``import autellix.vllm`` works
without vLLM installed. The modules are:

* :mod:`autellix.vllm.engine_config`: ``AutellixEngineConfig`` (read from vLLM's
  ``--additional-config '{"autellix": {...}}'``), no vLLM import;
* :mod:`autellix.vllm.metadata`: program metadata from a request's ``vllm_xargs``,
  no vLLM import;
* :mod:`autellix.vllm.scheduler`: ``AutellixScheduler`` and
  ``AutellixAsyncScheduler`` (imports vLLM);
* :mod:`autellix.vllm.tiny_model`: writes a tiny offline Llama model directory;
* :mod:`autellix.vllm.launch`: starts and stops vLLM OpenAI servers as subprocesses.

Dotted paths for ``--scheduler-cls``: ``autellix.vllm.scheduler.AutellixScheduler``
(synchronous; vLLM-CPU always uses it) and ``autellix.vllm.scheduler.AutellixAsyncScheduler``
(async scheduling, the GPU default).
"""

SCHEDULER_CLS = "autellix.vllm.scheduler.AutellixScheduler"
ASYNC_SCHEDULER_CLS = "autellix.vllm.scheduler.AutellixAsyncScheduler"
