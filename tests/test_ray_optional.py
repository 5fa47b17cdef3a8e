"""Ray is optional: the core never imports it, and asking for it without it says what to do."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

CORE = """
import sys
import autellix, autellix.sim, autellix.gateway, autellix.balancer, autellix.client
import autellix.cli.app, autellix.ray, autellix.ray.routing, autellix.ray.config
from autellix.gateway import create_app
create_app(["http://127.0.0.1:1"])
assert "ray" not in sys.modules, sorted(m for m in sys.modules if m.split(".")[0] == "ray")
print("ok")
"""

BLOCKED = "sys.modules['ray'] = None\n"  # any 'import ray' now raises ImportError
MAIN = "import sys\n{}from autellix.cli.app import main\nsys.argv[0] = 'autellix'\nmain()\n"


def run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=120)


def test_the_core_the_simulator_and_the_gateway_never_import_ray():
    out = run(CORE)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")


def test_serve_on_ray_without_ray_installed_fails_in_one_line_naming_the_extra():
    out = run(MAIN.format(BLOCKED), "serve", "--backend", "ray")
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "install autellix[ray]" in lines[0], out.stderr


def test_compare_on_ray_without_ray_installed_fails_in_one_line_naming_the_extra():
    out = run(MAIN.format(BLOCKED), "compare", "--ray", "--workload", "chatbot", "--n", "3",
              "--policies", "fcfs", "--loads", "1")
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "install autellix[ray]" in lines[0], out.stderr


def test_a_bad_backend_is_a_one_line_error():
    out = run(MAIN.format(""), "serve", "--backend", "k8s")
    assert out.returncode == 1 and "--backend must be 'local' or 'ray'" in out.stderr


def test_a_bad_ray_setting_is_a_one_line_error_before_ray_starts():
    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray is not installed (the check needs it to get past the install hint)")
    out = run(MAIN.format(""), "serve", "--backend", "ray", "--balancer", "nope")
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown balancer 'nope'" in lines[0], out.stderr
