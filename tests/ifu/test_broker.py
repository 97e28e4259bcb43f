"""The work queue against the real Redis server: SIGKILLed workers, exactly-once results."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from exocube.catalog import db as catalog_db
from exocube.catalog.models import TaskResult
from exocube.errors import CatalogError
from exocube.ifu.broker import (
    BrokerUnavailableError,
    Task,
    TaskError,
    Worker,
    WorkQueue,
    load_handler,
    store_result,
)

HERE = Path(__file__).parent


def results(db_url: str) -> list[tuple[str, dict, str]]:
    with catalog_db.session_scope(db_url) as s:
        rows = s.scalars(sa.select(TaskResult).order_by(TaskResult.task_id)).all()
        return [(r.task_id, r.result, r.worker) for r in rows]


def tasks(log: Path, n: int, sleep: float) -> list[Task]:
    return [Task(f"t{i}", "square", {"x": i, "sleep": sleep, "log": str(log)}) for i in range(n)]


def start_worker(redis_url, db_url, prefix, name, idle):
    cmd = [sys.executable, "-m", "exocube.ifu.broker", "--broker", redis_url, "--db", db_url,
           "--queue", prefix, "--handler", "square=chain_fixtures:slow_square",
           "--visibility-timeout", "1.0", "--idle-timeout", str(idle), "--name", name]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_killed_worker_task_is_redelivered_and_stored_once(redis_url, prefix, db_url, tmp_path):
    log = tmp_path / "starts.log"
    queue = WorkQueue(redis_url, prefix, visibility_timeout=1.0)
    queue.submit(tasks(log, 3, sleep=1.0))
    a = start_worker(redis_url, db_url, prefix, "worker-a", idle=30)
    try:
        deadline = time.monotonic() + 60
        while not (log.exists() and log.read_text().strip()):
            assert a.poll() is None, a.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(a.pid, signal.SIGKILL)
    finally:
        a.wait(timeout=30)
    assert queue.processing() == 1 and queue.pending() == 2 and results(db_url) == []
    b = start_worker(redis_url, db_url, prefix, "worker-b", idle=2.5)
    _, err = b.communicate(timeout=90)
    assert b.returncode == 0, err.decode()
    got = results(db_url)
    assert [(t, r) for t, r, _ in got] == [("t0", {"square": 0}), ("t1", {"square": 1}),
                                           ("t2", {"square": 4})]
    assert {w for _, _, w in got} == {"worker-b"}
    starts = [line.split()[0] for line in log.read_text().splitlines()]
    assert sorted(starts) == ["0", "0", "1", "2"]  # t0 ran twice, its result stored once
    assert queue.pending() == 0 and queue.processing() == 0


def test_double_delivery_stores_one_result(redis_url, prefix, db_url, tmp_path):
    queue = WorkQueue(redis_url, prefix, visibility_timeout=0.3)
    queue.submit(tasks(tmp_path / "log", 1, sleep=0))
    first = queue.claim()
    assert queue.reap() == 0  # the lease is alive
    time.sleep(0.5)  # the first worker stalls past its visibility timeout
    assert queue.reap() == 1
    second = queue.claim()
    assert second.task == first.task and second.token != first.token
    assert queue.renew(first) is False  # the first worker learns that its lease was lost
    assert store_result(db_url, prefix, second.task, {"square": 0}, "b") is True
    assert store_result(db_url, prefix, first.task, {"square": 0}, "a") is False
    queue.ack(second)
    queue.ack(first)
    assert [(t, w) for t, _, w in results(db_url)] == [("t0", "b")]
    assert queue.pending() == 0 and queue.processing() == 0


def test_killed_after_commit_before_ack_is_acknowledged_without_rerunning(
        redis_url, prefix, sqlite_url, tmp_path):
    catalog_db.upgrade(sqlite_url)
    log = tmp_path / "log"
    queue = WorkQueue(redis_url, prefix, visibility_timeout=0.3)
    queue.submit(tasks(log, 1, sleep=0))
    claim = queue.claim()
    store_result(sqlite_url, prefix, claim.task, {"square": 0}, "dead")  # then the worker dies
    time.sleep(0.5)
    worker = Worker(queue, sqlite_url, {"square": load_handler("chain_fixtures:slow_square")})
    assert worker.run_one() == claim.task
    assert not log.exists()  # the handler did not run again
    assert queue.pending() == 0 and queue.processing() == 0
    assert [w for _, _, w in results(sqlite_url)] == ["dead"]


def test_unreachable_database_leaves_the_task_to_be_redelivered(redis_url, prefix, tmp_path):
    queue = WorkQueue(redis_url, prefix, visibility_timeout=0.3)
    queue.submit(tasks(tmp_path / "log", 1, sleep=0))
    dead_db = "postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2"
    worker = Worker(queue, dead_db, {"square": load_handler("chain_fixtures:slow_square")})
    with pytest.raises(CatalogError, match=r"127\.0\.0\.1:1"):
        worker.run_one()
    assert queue.processing() == 1 and queue.pending() == 0
    time.sleep(0.5)
    assert queue.reap() == 1 and queue.pending() == 1


def test_unreachable_broker_is_a_clear_error_naming_the_url(tmp_path):
    queue = WorkQueue("redis://127.0.0.1:1/0", "exocube-test:none", socket_timeout=2)
    with pytest.raises(BrokerUnavailableError, match=r"redis://127\.0\.0\.1:1/0"):
        queue.submit(tasks(tmp_path / "log", 1, sleep=0))
    with pytest.raises(BrokerUnavailableError, match="does not answer"):
        queue.claim()


def test_bad_messages_and_handlers_are_refused():
    with pytest.raises(TaskError, match="malformed"):
        Task.from_message(b'{"id": 1}')
    with pytest.raises(TaskError, match="module:function"):
        load_handler("nohandler")
    with pytest.raises(TaskError, match="cannot be imported"):
        load_handler("exocube.nonexistent:fn")


def test_a_task_that_always_fails_is_parked_after_max_deliveries(
        redis_url, prefix, sqlite_url, tmp_path, caplog):
    catalog_db.upgrade(sqlite_url)
    queue = WorkQueue(redis_url, prefix, visibility_timeout=5, max_deliveries=3)
    bad = Task("bad", "fail", {"x": 7})
    queue.submit([bad, *tasks(tmp_path / "log", 2, sleep=0)])
    handlers = {"fail": load_handler("chain_fixtures:always_fails"),
                "square": load_handler("chain_fixtures:slow_square")}
    assert Worker(queue, sqlite_url, handlers).run(idle_timeout=0.2, poll=0.05) == 5
    assert queue.dead() == [bad]
    assert [t for t, _, _ in results(sqlite_url)] == ["t0", "t1"]
    assert queue.pending() == 0 and queue.processing() == 0
    assert sum("cube 7 is unusable" in r.getMessage() or "task bad failed" in r.getMessage()
               for r in caplog.records) >= 3


def test_heartbeats_keep_a_long_task_from_being_redelivered(redis_url, prefix, sqlite_url,
                                                            tmp_path):
    import threading

    catalog_db.upgrade(sqlite_url)
    log = tmp_path / "log"
    queue = WorkQueue(redis_url, prefix, visibility_timeout=0.4)
    queue.submit(tasks(log, 1, sleep=1.5))  # almost 4 visibility timeouts long
    reaped, stop = [], threading.Event()

    def reaper() -> None:
        while not stop.wait(0.05):
            reaped.append(queue.reap())

    thread = threading.Thread(target=reaper)
    thread.start()
    try:
        worker = Worker(queue, sqlite_url, {"square": load_handler("chain_fixtures:slow_square")})
        assert worker.run_one() is not None
    finally:
        stop.set()
        thread.join()
    assert len(reaped) > 10 and set(reaped) == {0}
    assert len(log.read_text().splitlines()) == 1
    assert queue.pending() == 0 and queue.processing() == 0
