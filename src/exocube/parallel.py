"""One Dask client factory for every stage that runs many independent tasks.

``client()`` gives a :class:`distributed.Client` for, in order of preference,
an explicit scheduler address, ``Settings.dask.scheduler_address``, or a new
``LocalCluster`` (processes, ``Settings.dask.n_workers`` workers). Local
workers start with glibc malloc settings suited to field-sized arrays: Dask's
default ``MALLOC_TRIM_THRESHOLD_=65536`` also fixes the mmap threshold at 128
KiB, so every array of a run would be a fresh ``mmap`` with page faults
(generation cost 2.5 times more CPU, ingest about 1.5 times); here allocations
up to 32 MiB stay on the heap. Workers of an existing scheduler keep their own
settings. A SLURM
cluster is available through :func:`slurm_client` when dask-jobqueue is
installed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dask
from distributed import Client, LocalCluster

from exocube.config import DaskOptions, get_settings
from exocube.errors import ParallelError

log = logging.getLogger(__name__)

WORKER_TRIM_THRESHOLD = 64 << 20
WORKER_MMAP_THRESHOLD = 32 << 20
WORKER_MALLOC = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": WORKER_TRIM_THRESHOLD,
    "distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": WORKER_MMAP_THRESHOLD,
}


@contextmanager
def client(
    scheduler_address: str | None = None,
    options: DaskOptions | None = None,
    connect_timeout: str = "10s",
) -> Iterator[Client]:
    """A Dask client, closed (and its local cluster shut down) on exit."""
    opts = options or get_settings().dask
    address = scheduler_address or opts.scheduler_address
    if address:
        yield from _remote_client(address, connect_timeout)
        return
    with dask.config.set(WORKER_MALLOC):
        cluster = LocalCluster(
            n_workers=opts.n_workers,
            threads_per_worker=opts.threads_per_worker,
            memory_limit=opts.memory_limit,
            processes=True,
            dashboard_address=":0",
        )
    log.info("started Dask LocalCluster with %d workers", opts.n_workers)
    try:
        with Client(cluster) as dask_client:
            yield dask_client
    finally:
        cluster.close()


def _remote_client(address: str, timeout: str) -> Iterator[Client]:
    try:
        dask_client = Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise ParallelError(
            f"could not reach the Dask scheduler at {address!r}: {exc}. "
            "Check the address, or unset EXOCUBE_DASK__SCHEDULER_ADDRESS to use a local cluster."
        ) from exc
    log.info("connected to Dask scheduler at %s", address)
    try:
        yield dask_client
    finally:
        dask_client.close()


@contextmanager
def slurm_client(jobs: int, **cluster_kwargs: Any) -> Iterator[Client]:
    """A Dask client on a SLURM cluster (needs the ``dask-jobqueue`` package)."""
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError as exc:
        raise ParallelError(
            "SLURM support needs dask-jobqueue: pip install dask-jobqueue"
        ) from exc
    cluster = SLURMCluster(**cluster_kwargs)
    cluster.scale(jobs=jobs)
    try:
        with Client(cluster) as dask_client:
            yield dask_client
    finally:
        cluster.close()
