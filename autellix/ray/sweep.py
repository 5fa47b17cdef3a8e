"""``autellix compare --ray``: simulation sweep points as Ray tasks.

Each point runs :func:`autellix.compare.sim_point` (the function ``--jobs`` runs in
its worker processes) as one Ray task; the programs and the base configuration are
put in Ray's object store once and shared by every task. The simulator is a pure,
seeded function of its arguments and the results are assembled in point order
(:func:`autellix.compare.assemble`), so the files a sweep writes are byte for byte
those of a local run, whichever node ran which point.

``address`` None starts a local Ray instance for the sweep and stops it after;
``auto`` or ``ray://head:10001`` joins a cluster (every node needs autellix
installed) and only disconnects from it.
"""

from __future__ import annotations

from autellix.compare import SweepResult, assemble, sim_point
from autellix.ray import require_ray


def run_ray_sweep(programs, points, base_cfg, progress=None, keep_calls: bool = False,
                  address: str | None = None) -> SweepResult:
    """Run every point as a Ray task; ``progress(done, point, summary)`` as they finish."""
    require_ray()
    import ray

    from autellix.ray.app import init_ray

    started = not ray.is_initialized()
    init_ray(address)
    try:
        task = ray.remote(num_cpus=1, max_retries=2)(sim_point)
        progs, cfg = ray.put(programs), ray.put(base_cfg)
        index = {task.remote(progs, pt, cfg, keep_calls): i for i, pt in enumerate(points)}
        results: list = [None] * len(points)
        pending = list(index)
        done = 0
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            i = index[ready[0]]
            results[i] = ray.get(ready[0])
            done += 1
            if progress is not None:
                progress(done, points[i], results[i][0])
    finally:
        if started:
            ray.shutdown()
    return assemble(results)
