"""Campaigns: deterministic tasks, truths drawn from the priors, submit-once against the
real Redis server, unknown ids, unreachable broker or database; end to end (``slow``):
two ``exocube ifu worker`` processes, one SIGKILLed mid-task, every result stored once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import redis
import sqlalchemy as sa
from broker_fixtures import REDIS_URL
from scipy import stats

from exocube.catalog import Campaign, Fit, TaskResult, session_scope, upgrade
from exocube.errors import CatalogError
from exocube.ifu import CampaignError, FitBudget, FitSettings, WorkQueue
from exocube.ifu.broker import BrokerUnavailableError, Task, store_result
from exocube.ifu.campaign import (
    CampaignMismatchError,
    UnknownCampaignError,
    campaign_priors,
    draw_truth,
    inject_recover_spec,
    jackknife_groups,
    register,
    representable_truth,
    status,
    submit,
    task_rng,
    tasks_of,
)
from exocube.ifu.forward import ForwardModel
from exocube.ifu.params import check_params
from exocube.ifu.priors import priors_for

SHORT = FitBudget(warmup=100, block_size=50, max_draws=100)




def small_spec(**kw):
    kw.setdefault("n", 2)
    kw.setdefault("snr", [5, 20])
    kw.setdefault("fit", FitSettings("bowshock", psf_fwhm=0.0))
    kw.setdefault("budget", SHORT)
    kw.setdefault("shape", (40, 7, 7))
    return inject_recover_spec(**kw)


def test_tasks_are_deterministic_from_seed_and_index():
    a, b = small_spec(seed=3), small_spec(seed=3)
    assert a.default_id() == b.default_id() != small_spec(seed=4).default_id()
    assert a.n_tasks == 2 * 2 * 2
    ta = tasks_of(a.default_id(), a)
    assert [t.message() for t in ta] == [t.message() for t in tasks_of(b.default_id(), b)]
    assert [t.payload["truth_model"] for t in ta] == ["bowshock"] * 4 + ["disk"] * 4
    assert [t.payload["snr"] for t in ta] == [5.0, 5.0, 20.0, 20.0] * 2
    assert len({t.id for t in ta}) == 8
    priors = a.priors_of("bowshock")
    assert draw_truth(priors, task_rng(a, 5)) == draw_truth(priors, task_rng(b, 5))
    assert draw_truth(priors, task_rng(a, 5)) != draw_truth(priors, task_rng(a, 6))


def test_truths_beyond_the_velocity_window_are_redrawn_and_counted():
    spec = small_spec(seed=16, n=1, snr=[10], models=["bowshock"])
    fm = ForwardModel.build("bowshock", spec.footprint.build(), spec.fit["z"], psf=None)
    priors = spec.priors_of("bowshock")
    redraws = []
    for index in range(12):
        direct = draw_truth(priors, task_rng(spec, index))
        truth, n = representable_truth(spec, "bowshock", task_rng(spec, index))
        assert fm.reach(check_params("bowshock", truth)) <= fm.window_kms
        if n == 0:  # nothing rejected: the same draw as before, so old tasks are unchanged
            assert truth == direct
        else:
            assert fm.reach(check_params("bowshock", direct)) > fm.window_kms
        redraws.append(n)
    assert sum(redraws) > 0, redraws  # the default priors reach past +-1500 km/s at times


def test_priors_that_never_fit_the_window_are_refused_naming_it():
    far = campaign_priors("bowshock", {"v_sys": ["fixed", 900.0], "v_far": ["fixed", 700.0]})
    spec = small_spec(models=["bowshock"], priors={"bowshock": far})
    with pytest.raises(CampaignError, match=r"velocity window of \+-1500 km/s"):
        representable_truth(spec, "bowshock", task_rng(spec, 0))


def test_truths_are_drawn_from_the_priors():
    priors = priors_for("bowshock", {"v_sys": ["normal", 50.0, 400.0],
                                     "sigma": ["loguniform", 20.0, 150.0],
                                     "v_far": ["uniform", -800.0, 800.0]})
    rng = np.random.default_rng(11)
    draws = [draw_truth(priors, rng) for _ in range(3000)]

    def ks(name, dist):
        return stats.kstest([d[name] for d in draws], dist.cdf).pvalue

    assert ks("v_far", stats.uniform(-800, 1600)) > 1e-3
    assert ks("sigma", stats.loguniform(20, 150)) > 1e-3
    lo, hi = (-1000 - 50) / 400, (1000 - 50) / 400  # truncated to v_sys's range
    assert ks("v_sys", stats.truncnorm(lo, hi, loc=50, scale=400)) > 1e-3
    assert {d["compression"] for d in draws} == {4.0}  # fixed


def test_campaign_priors_free_four_parameters_per_hypothesis():
    for model, free in (("bowshock", {"v_sys", "sigma", "sb_tip", "v_far"}),
                        ("disk", {"v_sys", "sigma", "sb_halpha", "h_r"})):
        assert {n for n, p in campaign_priors(model).items() if not p.fixed} == free


def test_register_is_idempotent_and_refuses_another_spec_under_the_same_id(sqlite_url):
    upgrade(sqlite_url)
    spec = small_spec()
    cid = register(sqlite_url, spec)
    assert register(sqlite_url, small_spec()) == cid == spec.default_id()
    with pytest.raises(CampaignMismatchError, match=r"differs in \['n'\]"):
        register(sqlite_url, small_spec(n=3), campaign_id=cid)
    with session_scope(sqlite_url) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Campaign)) == 1


def test_resubmitting_a_campaign_queues_nothing_twice(redis_url, prefix, db_url):
    spec = small_spec()
    cid = register(db_url, spec)
    queue = WorkQueue(redis_url, prefix)
    first = submit(queue, db_url, cid)
    assert (first.n_tasks, first.queued_now, first.already_queued, first.stored) == (8, 8, 0, 0)
    again = submit(queue, db_url, cid)
    assert (again.queued_now, again.already_queued) == (0, 8)
    assert queue.pending() == 8
    # a task done (claimed, stored, acknowledged) is not queued again either
    claim = queue.claim()
    store_result(db_url, prefix, claim.task, {"fit": {"converged": True}}, "w")
    queue.ack(claim)
    assert submit(queue, db_url, cid).queued_now == 0 and queue.pending() == 7
    # a broker that lost its queue: only the tasks without a stored result are queued
    fresh = WorkQueue(redis_url, prefix + ":fresh")
    try:
        sub = submit(fresh, db_url, cid)
        assert (sub.stored, sub.queued_now) == (1, 7)
        assert claim.task.id not in fresh.queued_ids()["pending"]
    finally:
        fresh.delete()
    st = status(db_url, cid, queue)
    assert (st["tasks"], st["stored"], st["pending"], st["processing"], st["dead"]) == (
        8, 1, 7, 0, 0)


def test_unknown_campaign_id_is_a_clear_error(sqlite_url, capsys):
    from exocube.cli import main

    upgrade(sqlite_url)
    with pytest.raises(UnknownCampaignError, match="no campaign 'ir-nope'"):
        status(sqlite_url, "ir-nope")
    with pytest.raises(SystemExit) as exc:
        main(["ifu", "campaign", "status", "ir-nope", "--db", sqlite_url])
    assert exc.value.code == 1
    assert "no campaign 'ir-nope'" in " ".join(capsys.readouterr().err.split())


def test_unreachable_broker_or_database_is_named_and_nothing_is_stored(sqlite_url, capsys):
    from exocube.cli import main

    upgrade(sqlite_url)
    args = ["ifu", "campaign", "inject-recover", "--n", "1", "--snr", "10",
            "--cube-shape", "40,7,7", "--psf-fwhm", "0"]
    with pytest.raises(SystemExit) as exc:
        main([*args, "--broker", "redis://127.0.0.1:1/0", "--db", sqlite_url])
    assert exc.value.code == 1
    assert "redis://127.0.0.1:1/0 does not answer" in " ".join(capsys.readouterr().err.split())
    with session_scope(sqlite_url) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Campaign)) == 0
    dead_db = "postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2"
    with pytest.raises(SystemExit) as exc:
        main([*args, "--broker", REDIS_URL, "--db", dead_db])
    assert exc.value.code == 1
    assert "127.0.0.1:1" in " ".join(capsys.readouterr().err.split())
    with pytest.raises(BrokerUnavailableError, match="does not answer"):
        WorkQueue("redis://127.0.0.1:1/0", "x", socket_timeout=1).submit_once(
            [Task("t", "k", {})])
    with pytest.raises(CatalogError):
        status(dead_db, "ir-x")


def test_jackknife_groups_partition_the_usable_spaxels():
    from exocube.ifu.campaign import Footprint

    cube = Footprint(shape=(40, 9, 9)).build()
    usable = (~cube.mask).any(axis=0)
    for scheme in ("bands", "random"):
        labels = jackknife_groups(cube, 4, scheme, seed=1)
        assert set(np.unique(labels[usable])) == {0, 1, 2, 3}
        assert (labels[~usable] == -1).all()
        sizes = np.bincount(labels[usable])
        assert sizes.max() - sizes.min() <= 1


# -- end to end ------------------------------------------------------------------------
def worker_cmd(redis_url: str, db: str, prefix: str, name: str, idle: float) -> list[str]:
    return [sys.executable, "-c", "from exocube.cli import main; main()", "ifu", "worker",
            "--broker", redis_url, "--db", db, "--queue", prefix, "--idle-timeout", str(idle),
            "--visibility-timeout", "10", "--name", name]


def start_worker(*args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(worker_cmd(*args), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def cli(*args: str) -> int:
    from exocube.cli import main

    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def results(db: str) -> list[tuple[str, str, dict]]:
    with session_scope(db) as s:
        rows = s.scalars(sa.select(TaskResult).order_by(TaskResult.task_id)).all()
        return [(r.task_id, r.worker, r.result) for r in rows]


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 4 fits with their compilations, in worker processes
def test_campaign_through_two_workers_one_killed_mid_task(redis_url, prefix, tmp_path,
                                                          capsys):
    import json

    db = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    upgrade(db)
    command = ["ifu", "campaign", "inject-recover", "--n", "1", "--snr", "10",
               "--models", "bowshock,disk", "--broker", redis_url, "--queue", prefix,
               "--db", db, "--cube-shape", "40,7,7", "--psf-fwhm", "0", "--warmup", "100",
               "--block-size", "50", "--max-draws", "100", "--seed", "2"]
    assert cli(*command) == 0

    sub = json.loads(capsys.readouterr().out)
    cid, n = sub["campaign_id"], sub["n_tasks"]
    assert (n, sub["queued_now"]) == (2, 2)
    a = start_worker(redis_url, db, prefix, "worker-a", 60)
    b = start_worker(redis_url, db, prefix, "worker-b", 20)
    procs = [a, b]
    queue = WorkQueue(redis_url, prefix)
    try:
        deadline = time.monotonic() + 600
        while True:  # kill a once it is inside a fit (a fit row exists, nothing stored)
            with session_scope(db) as s:
                fits = s.scalar(sa.select(sa.func.count()).select_from(Fit))
            if fits >= 1 and queue.processing() == 2:
                break
            assert a.poll() is None, a.communicate()[1].decode()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.2)
        os.kill(a.pid, signal.SIGKILL)
        a.wait(timeout=30)
        procs.append(start_worker(redis_url, db, prefix, "worker-c", 20))
        for p in procs[1:]:
            _, err = p.communicate(timeout=3600)
            assert p.returncode == 0, err.decode()[-3000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    got = results(db)
    assert [t for t, _, _ in got] == [f"{cid}:{i:05d}" for i in range(n)]  # each once
    assert "worker-a" not in {w for _, w, _ in got}
    assert queue.pending() == 0 and queue.processing() == 0 and queue.dead() == []
    deliveries = redis.Redis.from_url(redis_url).hgetall(f"{prefix}:deliveries")
    # a's task was re-delivered (on a loaded machine a slow heartbeat may add a delivery;
    # the result is still stored once, as checked above)
    assert max(int(v) for v in deliveries.values()) >= 2
    for _, _, r in got:
        assert set(r["fits"]) == {"bowshock", "disk"}
        for model, f in r["fits"].items():
            assert f["draws_per_chain"] == 100 and set(f["posterior"]) == set(r["free"][model])
    assert cli(*command) == 0  # re-running the same command submits nothing
    again = json.loads(capsys.readouterr().out)
    assert (again["campaign_id"], again["queued_now"], again["stored"]) == (cid, 0, n)
    assert cli("ifu", "report", cid, "--db", db, "--out", str(tmp_path / "rep")) == 0
    text = capsys.readouterr().out
    assert "2 of 2 tasks stored" in text and "Coverage" in text
    assert (tmp_path / "rep" / f"{cid}_coverage.png").exists()


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_jackknife_campaign_on_dask_stores_each_subset_once(tmp_path):
    from fit_fixtures import write_cube

    from exocube.ifu import jackknife_spec, run_on_dask
    from exocube.ifu.campaign import records
    from exocube.parallel import cluster_client

    cube, _ = write_cube(tmp_path)
    db = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    upgrade(db)
    spec = jackknife_spec(str(cube), groups=2, models=["bowshock"],
                          priors={"bowshock": campaign_priors("bowshock")},
                          fit=FitSettings("bowshock", psf_fwhm=0.0), budget=SHORT)
    cid = register(db, spec)
    with cluster_client("local", n_workers=2) as client:
        assert run_on_dask(client, db, cid) == 3
        assert run_on_dask(client, db, cid) == 0  # nothing left to run
    got = records(db, cid)
    assert [r["subset"] for r in got] == [0, 1, 2]
    usable = int(usable_spaxels(cube).sum())
    assert got[0]["left_out_spaxels"] == 0
    assert got[1]["left_out_spaxels"] + got[2]["left_out_spaxels"] == usable
    assert all(r["fit"]["draws_per_chain"] == 100 for r in got)
    with session_scope(db) as s:
        assert all(w.startswith("dask:") for w in s.scalars(sa.select(TaskResult.worker)))


def usable_spaxels(path) -> np.ndarray:
    """The spaxels of the cube at ``path`` with any unmasked voxel."""
    from exocube.ifu import read_s3d

    return (~read_s3d(path).mask).any(axis=0)
