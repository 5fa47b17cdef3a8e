"""``autellix compare --ray``: simulation sweep points as Ray tasks.

:class:`RayPoints` is the Ray counterpart of the process pool behind ``--jobs``
(:class:`autellix.sweep.PointRunner` uses one or the other). Each point runs
:func:`autellix.sweep.simulate_point` as one Ray task; the program pools, the base
configuration and the window go to Ray's object store once and are shared by every
task. The simulator is a pure, seeded function of its arguments and results are
taken in submission order, so the files a sweep writes are byte for byte those of
a local run, whichever node ran which point.

``address`` None starts a local Ray instance for the sweep and stops it after;
``auto`` or ``ray://head:10001`` joins a cluster (every node needs autellix
installed) and only disconnects from it.
"""

from __future__ import annotations

from autellix.ray import require_ray
from autellix.sweep import simulate_point


def _point(ctx, pt):
    pools, base, window, keep_calls = ctx
    return simulate_point(pt, pools[pt.seed], base, window, keep_calls)


class RayPoints:
    """Runs batches of points as Ray tasks; :meth:`close` ends what it started."""

    def __init__(self, pools: dict, base, window, keep_calls: bool,
                 address: str | None = None):
        require_ray()
        import ray

        from autellix.ray.app import init_ray

        self._started = not ray.is_initialized()
        init_ray(address)
        self._task = ray.remote(num_cpus=1, max_retries=2)(_point)
        self._ctx = ray.put((pools, base, window, keep_calls))

    def map(self, points):
        """Results in the order of ``points``, each yielded as soon as it and every
        earlier one are done."""
        import ray

        refs = [self._task.remote(self._ctx, pt) for pt in points]
        for ref in refs:
            yield ray.get(ref)

    def close(self) -> None:
        import ray

        if self._started and ray.is_initialized():
            ray.shutdown()
