"""One Dask client factory for every stage that runs many independent tasks.

``client()`` gives a :class:`distributed.Client` for, in order of preference,
an explicit scheduler address, ``Settings.dask.scheduler_address``, or a new
``LocalCluster`` (processes, ``Settings.dask.n_workers`` workers). Local
workers start with glibc malloc settings suited to field-sized arrays: Dask's
default ``MALLOC_TRIM_THRESHOLD_=65536`` also fixes the mmap threshold at 128
KiB, so every array of a run would be a fresh ``mmap`` with page faults
(generation cost 2.5 times more CPU, ingest about 1.5 times); here allocations
up to 32 MiB stay on the heap. Workers of an existing scheduler keep their own
settings. A local scheduler never retires a worker for missed heartbeats
(``distributed.scheduler.worker-ttl`` off): its nanny already sees a worker process
die, and on a loaded machine, or with the client's process paused (SIGSTOP/SIGCONT), a
live worker's heartbeats stall for minutes; Dask's default 5-minute TTL then restarted
both workers of an ExoPlaSim ensemble and killed their model years in flight (measured:
"Worker failed to heartbeat for 308s", 2026-12-02). A SLURM
cluster (one job per worker, dask-jobqueue's ``SLURMCluster``) comes from
:func:`slurm_client`, and :func:`cluster_client` picks one of the three from a
``--cluster`` value (``local``, ``slurm`` or a scheduler address).
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dask
from distributed import Client, LocalCluster

from exocube.config import DaskOptions, get_settings
from exocube.errors import MissingToolError, ParallelError

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
    with dask.config.set({**WORKER_MALLOC, "distributed.scheduler.worker-ttl": None}):
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


@dataclass(frozen=True)
class SlurmOptions:
    """One SLURM job per Dask worker (dask-jobqueue ``SLURMCluster``): one worker thread,
    ``cores`` CPUs booked (a run's MPI processes)."""

    jobs: int = 2
    cores: int = 1
    memory: str = "2GiB"
    walltime: str = "24:00:00"
    partition: str | None = None
    account: str | None = None
    host: str | None = None  # scheduler address the jobs connect to (default: this host)
    log_directory: str | None = None
    start_timeout_s: float = 300.0


def check_slurm() -> None:
    """Refuse early when SLURM's client programs or controller are missing."""
    if shutil.which("sbatch") is None or shutil.which("squeue") is None:
        raise MissingToolError(
            "SLURM is not installed (no sbatch/squeue on PATH): install the Debian package "
            "slurm-wlm (slurm-client on a submit host), or use --cluster local")
    proc = subprocess.run(["squeue", "--noheader"], capture_output=True, text=True,
                          check=False, timeout=30)
    if proc.returncode != 0:
        raise ParallelError(
            f"SLURM's controller does not answer (squeue: {proc.stderr.strip()}); start "
            "slurmctld, slurmd and munged (see .ci/slurm-up.sh) or use --cluster local")


@contextmanager
def slurm_client(options: SlurmOptions | None = None, **cluster_kwargs: Any) -> Iterator[Client]:
    """A Dask client on a SLURM cluster (needs the ``dask-jobqueue`` package); waits for the
    first worker job to start, up to ``options.start_timeout_s``."""
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError as exc:
        raise ParallelError(
            "SLURM support needs dask-jobqueue: pip install 'exocube[gcm]'"
        ) from exc
    opts = options or SlurmOptions()
    check_slurm()
    kwargs: dict[str, Any] = {
        # one worker thread per job (one run at a time), opts.cores CPUs booked for its MPI
        "cores": 1, "job_cpu": opts.cores, "processes": 1, "memory": opts.memory,
        "walltime": opts.walltime,
        "queue": opts.partition, "account": opts.account, "python": sys.executable,
        "log_directory": opts.log_directory,
        "scheduler_options": {"host": opts.host or socket.gethostname(),
                              "dashboard_address": ":0"},
    }
    kwargs.update(cluster_kwargs)
    cluster = SLURMCluster(**kwargs)
    try:
        cluster.scale(jobs=opts.jobs)
        with Client(cluster) as dask_client:
            _wait_for_first_worker(dask_client, opts)
            yield dask_client
    finally:
        cluster.close()


def _wait_for_first_worker(dask_client: Client, opts: SlurmOptions) -> None:
    try:
        dask_client.wait_for_workers(1, timeout=opts.start_timeout_s)
    except TimeoutError as exc:
        raise ParallelError(
            f"no SLURM worker job started within {opts.start_timeout_s:.0f} s; check "
            f"`squeue` and the job logs ({opts.log_directory or 'the submit directory'})"
        ) from exc


@contextmanager
def cluster_client(cluster: str = "local", *, n_workers: int | None = None,
                   slurm: SlurmOptions | None = None) -> Iterator[Client]:
    """``local`` (a LocalCluster of ``n_workers``), ``slurm``, or a scheduler address."""
    if cluster == "slurm":
        with slurm_client(slurm) as dask_client:
            yield dask_client
        return
    if cluster == "local":
        opts = get_settings().dask
        if n_workers is not None:
            opts = opts.model_copy(update={"n_workers": n_workers, "scheduler_address": None})
        with client(options=opts) as dask_client:
            yield dask_client
        return
    with client(scheduler_address=cluster) as dask_client:
        yield dask_client
