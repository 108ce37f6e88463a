"""Run independent jobs (walk-forward windows, sweep points) serially or on Ray, with the same results.

Ray is local by default (a private single-node cluster started for the run, no dashboard) or a
cluster by address (``ray.address`` in ``config/algo_config.yaml`` or ``--ray-address``). Each job is
one Ray task holding one CPU, so a worker process runs one job (and so at most one nautilus node) at
a time. Jobs seed numpy and torch themselves and run torch on one thread, so a job computes the same
numbers in a Ray worker as in the calling process: the serial and the Ray run are equal.
"""

from collections.abc import Callable
from collections.abc import Sequence
from typing import Any
from typing import TypeVar


J = TypeVar("J")
R = TypeVar("R")

#: Object store of a local cluster: jobs pass market data, not model checkpoints.
_LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024


def run_jobs(
    fn: Callable[[J], R],
    jobs: Sequence[J],
    *,
    backend: str = "serial",
    address: str | None = None,
    num_cpus: int | None = None,
) -> list[R]:
    """``[fn(job) for job in jobs]`` in order, on ``backend`` ``serial`` or ``ray``."""
    if backend == "serial" or not jobs:
        return [fn(job) for job in jobs]
    if backend != "ray":
        raise ValueError(f"unknown backend {backend!r}: use serial or ray")
    import ray

    started_here = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "ignore_reinit_error": True,
            "configure_logging": False,
        }
        if address:
            kwargs["address"] = address
        else:
            kwargs["num_cpus"] = num_cpus or min(len(jobs), _cpu_count())
            kwargs["object_store_memory"] = _LOCAL_OBJECT_STORE_BYTES
        ray.init(**kwargs)
        started_here = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(fn)
        refs = [remote.remote(job) for job in jobs]
        return list(ray.get(refs))
    finally:
        if started_here:
            ray.shutdown()


def _cpu_count() -> int:
    import os

    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
