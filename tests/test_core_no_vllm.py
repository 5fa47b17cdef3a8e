"""The core must import and run without vLLM installed."""

import subprocess
import sys

CODE = """
import sys
sys.modules['vllm'] = None  # any 'import vllm' now raises ImportError
import autellix, autellix.sim, autellix.mlq, autellix.policies, autellix.balancer
import autellix.gateway, autellix.client, autellix.replay, autellix.vllm
import autellix.workloads.registry, autellix.cli.app
from autellix.sim import simulate, SimConfig
from autellix.workloads.registry import generate
res = simulate(generate('chatbot', 3, 0), SimConfig(policy='plas'))
assert len(res.programs) == 3
print('ok')
"""


def test_core_imports_without_vllm():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")
