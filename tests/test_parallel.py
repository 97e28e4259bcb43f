"""The Dask client factory: local cluster, explicit scheduler, unreachable scheduler."""

from __future__ import annotations

import os
import socket

import pytest

from exocube.config import DaskOptions
from exocube.errors import ParallelError
from exocube.parallel import client


def test_local_cluster_runs_tasks_in_worker_processes() -> None:
    with client(options=DaskOptions(n_workers=2, memory_limit="1GiB")) as c:
        assert len(c.scheduler_info()["workers"]) == 2
        pids = set(c.gather(c.map(lambda _: os.getpid(), range(8), pure=False)))
        # a starved or paused worker is not retired for missed heartbeats (docstring)
        assert c.cluster.scheduler.worker_ttl is None
    assert os.getpid() not in pids


def test_connects_to_existing_scheduler(dask_client) -> None:
    address = dask_client.scheduler.address
    with client(scheduler_address=address) as c:
        assert c.submit(sum, [1, 2, 3]).result() == 6


def test_unreachable_scheduler_is_a_clear_error() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    with pytest.raises(ParallelError, match="could not reach the Dask scheduler"), \
            client(scheduler_address=address, connect_timeout="1s"):
        pass
