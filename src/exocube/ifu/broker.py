"""A reliable work queue over a Redis-protocol broker (Redis, DragonflyDB, Valkey).

Keys under one prefix (``<prefix>`` below, one per campaign):

- ``<prefix>:pending``: a list of task messages (JSON) waiting for a worker;
- ``<prefix>:processing``: the messages a worker has claimed and not acknowledged;
- ``<prefix>:lease:<task id>``: a key with a time-to-live (the visibility timeout)
  that the claiming worker keeps alive with heartbeats;
- ``<prefix>:deliveries``: a hash counting each task's deliveries;
- ``<prefix>:dead``: messages delivered more than ``max_deliveries`` times (a task
  that kills or fails every worker is parked there, not retried for ever);
- ``<prefix>:ids``: a set of every task id submitted with :meth:`WorkQueue.submit_once`
  (a re-submitted task is not queued again).

Delivery is at-least-once, results are exactly-once:

1. **claim**: one Lua script moves the oldest message from pending to processing
   (``LMOVE``) and sets its lease, atomically, so no message is ever in processing
   without a lease being set in the same step;
2. the worker runs the task, renewing the lease every ``heartbeat`` seconds;
3. the result is committed to the catalogue (``task_results``, unique per task id:
   ``INSERT ... ON CONFLICT DO NOTHING``, so a task delivered twice stores its result
   once), and only then **acknowledged** (``LREM`` from processing, lease deleted);
4. **reap** (run by every worker between tasks, and callable by anyone): one Lua
   script returns every message in processing whose lease has expired to pending.
   A worker killed at any point before step 3 commits leaves its task to be
   re-delivered; killed between 3 and the acknowledgement, the re-delivered task
   finds its result stored and is acknowledged without running again.

A broker that does not answer raises :class:`BrokerUnavailableError` naming the URL;
nothing is removed from the queue by a failed call.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from exocube.catalog import TaskResult, session_scope
from exocube.errors import ExocubeError

log = logging.getLogger(__name__)

Handler = Callable[[Mapping[str, Any]], Mapping[str, Any]]

_CLAIM = """
while true do
  local msg = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
  if not msg then return false end
  local id = cjson.decode(msg)['id']
  local n = redis.call('HINCRBY', KEYS[3], id, 1)
  if n <= tonumber(ARGV[4]) then
    redis.call('SET', ARGV[1] .. id, ARGV[2], 'PX', ARGV[3])
    return msg
  end
  redis.call('LREM', KEYS[2], 1, msg)
  redis.call('RPUSH', KEYS[4], msg)
end
"""

_REAP = """
local msgs = redis.call('LRANGE', KEYS[2], 0, -1)
local n = 0
for _, msg in ipairs(msgs) do
  local id = cjson.decode(msg)['id']
  if redis.call('EXISTS', ARGV[1] .. id) == 0 then
    redis.call('LREM', KEYS[2], 1, msg)
    redis.call('LPUSH', KEYS[1], msg)
    n = n + 1
  end
end
return n
"""

_RELEASE = """
redis.call('LREM', KEYS[2], 1, ARGV[1])
redis.call('DEL', KEYS[3])
redis.call('RPUSH', KEYS[1], ARGV[1])
return 1
"""

_SUBMIT_ONCE = """
local n = 0
for i = 1, #ARGV, 2 do
  if redis.call('SADD', KEYS[2], ARGV[i]) == 1 then
    redis.call('RPUSH', KEYS[1], ARGV[i + 1])
    n = n + 1
  end
end
return n
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class BrokerError(ExocubeError):
    """The work queue cannot be used (the message says why)."""


class BrokerUnavailableError(BrokerError):
    """The broker at a URL does not answer."""


class TaskError(BrokerError, ValueError):
    """A task message or handler is malformed."""


@dataclass(frozen=True)
class Task:
    """One unit of work: an id unique in its queue, a kind and a JSON payload."""

    id: str
    kind: str
    payload: Mapping[str, Any]

    def message(self) -> str:
        return json.dumps({"id": self.id, "kind": self.kind, "payload": dict(self.payload)},
                          sort_keys=True)

    @classmethod
    def from_message(cls, raw: bytes | str) -> Task:
        try:
            d = json.loads(raw)
            return cls(str(d["id"]), str(d["kind"]), dict(d["payload"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise TaskError(f"malformed task message {raw[:200]!r}: {exc}") from exc


@dataclass(frozen=True)
class Claim:
    """A task claimed by a worker, with the raw message (for acknowledgement) and token."""

    task: Task
    raw: bytes
    token: str


class WorkQueue:
    """The queue ``prefix`` on the broker at ``url`` (``redis://host:port/db``)."""

    def __init__(self, url: str, prefix: str, visibility_timeout: float = 60.0,
                 socket_timeout: float = 5.0, max_deliveries: int = 5) -> None:
        if visibility_timeout <= 0:
            raise BrokerError(f"visibility_timeout={visibility_timeout}: expected > 0 seconds")
        if max_deliveries < 1:
            raise BrokerError(f"max_deliveries={max_deliveries}: expected >= 1")
        self.url, self.prefix, self.max_deliveries = url, prefix, max_deliveries
        self.visibility_ms = int(visibility_timeout * 1000)
        try:
            self._r = redis.Redis.from_url(url, socket_timeout=socket_timeout,
                                           socket_connect_timeout=socket_timeout)
        except ValueError as exc:
            raise BrokerError(f"broker URL {url!r} is invalid: {exc}; "
                              "expected redis://host:port/db") from exc
        self._claim = self._r.register_script(_CLAIM)
        self._reap = self._r.register_script(_REAP)
        self._renew = self._r.register_script(_RENEW)
        self._release = self._r.register_script(_RELEASE)
        self._submit_once = self._r.register_script(_SUBMIT_ONCE)

    @property
    def pending_key(self) -> str:
        return f"{self.prefix}:pending"

    @property
    def processing_key(self) -> str:
        return f"{self.prefix}:processing"

    @property
    def dead_key(self) -> str:
        return f"{self.prefix}:dead"

    def lease_key(self, task_id: str) -> str:
        return f"{self.prefix}:lease:{task_id}"

    def submit(self, tasks: list[Task]) -> int:
        """Append ``tasks`` to pending in one round trip; the pending length after."""
        if not tasks:
            return self.pending()
        with self._errors("submit"):
            return int(self._r.rpush(self.pending_key, *[t.message() for t in tasks]))

    def submit_once(self, tasks: list[Task]) -> int:
        """Queue each task whose id this queue has never seen (``<prefix>:ids``); how many.

        One Lua script records the id and appends the message atomically, so a task
        submitted twice (a re-run campaign command) is queued once, even if it has since
        been claimed, acknowledged or parked in the dead list.
        """
        if not tasks:
            return 0
        args = [x for t in tasks for x in (t.id, t.message())]
        with self._errors("submit"):
            return int(self._submit_once(keys=[self.pending_key, self.ids_key], args=args))

    @property
    def ids_key(self) -> str:
        return f"{self.prefix}:ids"

    def queued_ids(self) -> dict[str, list[str]]:
        """The task ids in pending, processing and dead (for status reports)."""
        with self._errors("list queued tasks"):
            return {name: [Task.from_message(m).id for m in self._r.lrange(key, 0, -1)]
                    for name, key in (("pending", self.pending_key),
                                      ("processing", self.processing_key),
                                      ("dead", self.dead_key))}

    def claim(self) -> Claim | None:
        """The oldest pending task, moved to processing with a lease; ``None`` if empty."""
        token = uuid.uuid4().hex
        with self._errors("claim"):
            raw = self._claim(
                keys=[self.pending_key, self.processing_key, f"{self.prefix}:deliveries",
                      self.dead_key],
                args=[f"{self.prefix}:lease:", token, self.visibility_ms, self.max_deliveries],
            )
        return None if raw is None else Claim(Task.from_message(raw), raw, token)

    def renew(self, claim: Claim) -> bool:
        """Extend the claim's lease; ``False`` if it was lost (expired and maybe re-queued)."""
        with self._errors("renew a lease"):
            return bool(self._renew(keys=[self.lease_key(claim.task.id)],
                                    args=[claim.token, self.visibility_ms]))

    def ack(self, claim: Claim) -> None:
        """Remove the claimed message from processing (call after its result is committed)."""
        with self._errors("acknowledge"):
            pipe = self._r.pipeline(transaction=True)
            pipe.lrem(self.processing_key, 1, claim.raw)
            pipe.delete(self.lease_key(claim.task.id))
            pipe.execute()

    def release(self, claim: Claim) -> None:
        """Return a claimed task to the end of pending now (its handler failed)."""
        with self._errors("release a task"):
            self._release(keys=[self.pending_key, self.processing_key,
                                self.lease_key(claim.task.id)], args=[claim.raw])

    def dead(self) -> list[Task]:
        """The tasks parked after ``max_deliveries`` deliveries."""
        with self._errors("list dead tasks"):
            return [Task.from_message(m) for m in self._r.lrange(self.dead_key, 0, -1)]

    def reap(self) -> int:
        """Return every processing message whose lease expired to pending; how many."""
        with self._errors("re-queue expired tasks"):
            return int(self._reap(keys=[self.pending_key, self.processing_key],
                                  args=[f"{self.prefix}:lease:"]))

    def pending(self) -> int:
        with self._errors("count pending tasks"):
            return int(self._r.llen(self.pending_key))

    def processing(self) -> int:
        with self._errors("count tasks in processing"):
            return int(self._r.llen(self.processing_key))

    def delete(self) -> None:
        """Remove every key of this queue from the broker."""
        with self._errors("delete the queue"):
            keys = list(self._r.scan_iter(match=f"{self.prefix}:*"))
            if keys:
                self._r.delete(*keys)

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise BrokerUnavailableError(
                f"could not {action}: the broker at {self.url} does not answer ({exc}). "
                "Check that Redis/DragonflyDB runs there and the URL is right (--broker)"
            ) from exc
        except redis.ResponseError as exc:
            raise BrokerError(f"the broker at {self.url} refused to {action}: {exc}") from exc


def store_result(db_url: str, queue: str, task: Task, result: Mapping[str, Any],
                 worker: str) -> bool:
    """Commit ``task``'s result once; ``True`` if stored now, ``False`` if already there."""
    values = {"task_id": task.id, "queue": queue, "payload": dict(task.payload),
              "result": dict(result), "worker": worker}
    with session_scope(db_url) as s:
        insert = postgresql.insert if s.bind.dialect.name == "postgresql" else sqlite.insert
        stmt = insert(TaskResult).values(**values).on_conflict_do_nothing(
            index_elements=["task_id"]).returning(TaskResult.id)
        return s.execute(stmt).scalar() is not None


def result_exists(db_url: str, task_id: str) -> bool:
    with session_scope(db_url) as s:
        q = sa.select(sa.func.count()).select_from(TaskResult).where(TaskResult.task_id == task_id)
        return s.scalar(q) > 0


def load_handler(spec: str) -> Handler:
    """The handler named ``module:function``."""
    module, _, name = spec.partition(":")
    if not module or not name:
        raise TaskError(f"handler {spec!r}: expected 'package.module:function'")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise TaskError(f"handler {spec!r} cannot be imported: {exc}") from exc


class Worker:
    """Claims tasks from ``queue``, runs ``handlers[kind]``, stores results, acknowledges."""

    def __init__(self, queue: WorkQueue, db_url: str, handlers: Mapping[str, Handler],
                 heartbeat: float | None = None, name: str | None = None) -> None:
        self.queue, self.db_url, self.handlers = queue, db_url, dict(handlers)
        self.heartbeat = heartbeat or queue.visibility_ms / 3000
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"

    def run_one(self) -> Task | None:
        """Reap, claim one task and process it; the task, or ``None`` if none was pending."""
        self.queue.reap()
        claim = self.queue.claim()
        if claim is None:
            return None
        self.process(claim)
        return claim.task

    def process(self, claim: Claim) -> None:
        task = claim.task
        if not result_exists(self.db_url, task.id):
            handler = self.handlers.get(task.kind)
            if handler is None:
                raise TaskError(f"task {task.id}: no handler for kind {task.kind!r} "
                                f"(this worker knows {sorted(self.handlers)})")
            try:
                with self._heartbeat(claim):
                    result = handler(task.payload)
            except Exception:
                # Not hidden: logged with its traceback, retried up to max_deliveries,
                # then parked in the dead list for a person to look at.
                log.exception("task %s failed on %s; returned to the queue", task.id, self.name)
                self.queue.release(claim)
                return
            stored = store_result(self.db_url, self.queue.prefix, task, result, self.name)
            log.info("task %s done by %s (stored: %s)", task.id, self.name, stored)
        self.queue.ack(claim)

    def run(self, idle_timeout: float | None = None, poll: float = 0.2) -> int:
        """Process tasks until none arrive for ``idle_timeout`` s (forever if ``None``)."""
        done, idle_since = 0, time.monotonic()
        while True:
            if self.run_one() is not None:
                done, idle_since = done + 1, time.monotonic()
                continue
            if idle_timeout is not None and time.monotonic() - idle_since >= idle_timeout:
                return done
            time.sleep(poll)

    @contextmanager
    def _heartbeat(self, claim: Claim) -> Iterator[None]:
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.heartbeat):
                try:
                    if not self.queue.renew(claim):
                        log.warning("task %s: lease lost; it may be re-delivered", claim.task.id)
                except BrokerError as exc:
                    log.warning("task %s: heartbeat failed: %s", claim.task.id, exc)

        thread = threading.Thread(target=beat, name=f"heartbeat-{claim.task.id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def main(argv: list[str] | None = None) -> int:
    """``python -m exocube.ifu.broker --broker URL --db URL --queue P --handler K=mod:fn``.

    A worker process (the core of ``exocube ifu worker``); logs, never prints.
    """
    import argparse

    ap = argparse.ArgumentParser(prog="python -m exocube.ifu.broker")
    ap.add_argument("--broker", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--queue", required=True)
    ap.add_argument("--handler", action="append", required=True, help="KIND=module:function")
    ap.add_argument("--visibility-timeout", type=float, default=60.0)
    ap.add_argument("--idle-timeout", type=float, default=None)
    ap.add_argument("--name", default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    handlers = {}
    for spec in args.handler:
        kind, sep, target = spec.partition("=")
        if not sep:
            raise TaskError(f"--handler {spec!r}: expected KIND=module:function")
        handlers[kind] = load_handler(target)
    queue = WorkQueue(args.broker, args.queue, visibility_timeout=args.visibility_timeout)
    Worker(queue, args.db, handlers, name=args.name).run(idle_timeout=args.idle_timeout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
