"""The KubeRay RayService example under deploy/ parses and deploys valid autellix settings."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")  # PyYAML comes with vLLM and with Ray

from autellix.ray.config import RayServeConfig  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "deploy" / "kuberay-rayservice.yaml"


def load() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


def application(doc: dict) -> tuple[dict, dict, RayServeConfig]:
    """The Serve config, its one application, and that application's autellix settings."""
    serve = yaml.safe_load(doc["spec"]["serveConfigV2"])
    (app,) = serve["applications"]
    cfg = RayServeConfig(**json.loads(app["runtime_env"]["env_vars"]["AUTELLIX_RAY_CONFIG"]))
    return serve, app, cfg


def test_the_manifest_is_a_rayservice_on_the_pinned_ray():
    doc = load()
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayService"
    pin = re.search(r'"ray\[serve\]==([\d.]+)"', (ROOT / "pyproject.toml").read_text())
    assert pin and doc["spec"]["rayClusterConfig"]["rayVersion"] == pin.group(1)


def test_its_application_imports_our_builder_with_valid_settings():
    serve, app, cfg = application(load())
    module, attr = app["import_path"].split(":")
    assert callable(getattr(importlib.import_module(module), attr))  # no Ray needed to look
    assert cfg.policy == "plas" and cfg.balancer == "autellix"
    assert serve["http_options"]["port"] == 8000


def test_the_worker_groups_hold_the_gpus_the_replicas_reserve():
    doc = load()
    _, _, cfg = application(doc)
    gpus = sum(int(g["replicas"]) * int(c["resources"]["limits"].get("nvidia.com/gpu", 0))
               for g in doc["spec"]["rayClusterConfig"]["workerGroupSpecs"]
               for c in g["template"]["spec"]["containers"])
    assert gpus >= cfg.replicas * cfg.replica_gpus > 0
