"""A local Dask cluster with the worker environment that numpy simulation needs.

Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_=65536`` in every worker by default
(``distributed.nanny.pre-spawn-environ``); measured on a 2-core machine, it slows the CPU
backend's numpy simulation by 35–45 %. :func:`local_cluster` unsets it. For a cluster you start
yourself (``dask worker``, dask-jobqueue, Kubernetes), put the same override in the workers'
Dask configuration (``docs/evaluate.md``, "On a cluster").
"""

from __future__ import annotations

from talon.ir.errors import MissingDependencyError

WORKER_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


def local_cluster(n_workers: int = 2, **kwargs):
    """A ``distributed.Client`` on a new ``LocalCluster`` of ``n_workers`` single-threaded worker
    processes on loopback (close it with ``client.close(); client.cluster.close()`` or a ``with``)."""
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise MissingDependencyError(
            "talon.evaluate on Dask needs dask.distributed: pip install -e '.[dask]' (from the talon checkout)"
        ) from None
    with dask.config.set(WORKER_CONFIG):
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            **kwargs,
        )
    return Client(cluster)
