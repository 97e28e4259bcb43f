"""Durable chains on SQLite and PostgreSQL: SIGKILL mid-fit, resume, netCDF round trip."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from chain_fixtures import BLOCK, gaussian_provenance, gaussian_sampler

from exocube.catalog import db as catalog_db
from exocube.ifu.chains import (
    BlockConflictError,
    ChainStore,
    EmptyFitError,
    FitMismatchError,
    UnknownFitError,
    run_fit,
    start_fit,
)
from exocube.ifu.gate import GateConfig, NotConvergedError
from exocube.ifu.sampling import BlockSampler, SamplerConfig, decode_state, encode_state

HERE = Path(__file__).parent
N_BLOCKS = 6


@pytest.fixture(scope="module")
def sampler():
    return gaussian_sampler()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request) -> ChainStore:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    catalog_db.upgrade(url)
    return ChainStore(url)


def test_blocks_are_committed_once_and_read_back_exactly(store, sampler):
    fit_id = start_fit(store, sampler, gaussian_provenance())
    seen = []
    report = run_fit(store, sampler, fit_id, n_blocks=3,
                     on_block=lambda i, b: seen.append((i, b.n_draws)))
    assert store.block_indices(fit_id) == [0, 1, 2]
    assert seen == [(0, BLOCK), (1, BLOCK), (2, BLOCK)]
    assert store.draws(fit_id)["mu"].shape == (4, 3 * BLOCK)
    assert store.fit(fit_id).status == ("converged" if report.passed else "not_converged")
    # a block index already stored is refused by the unique constraint
    block = store.blocks(fit_id)[0]
    block.state = decode_state(store.last_state_blob(fit_id)[1], sampler.state_template())
    with pytest.raises(BlockConflictError, match=r"block 1 of fit \w+ is already stored"):
        store.append_block(fit_id, 1, block)
    assert store.block_indices(fit_id) == [0, 1, 2]
    # resuming a finished fit adds nothing
    run_fit(store, sampler, fit_id, n_blocks=3)
    assert store.block_indices(fit_id) == [0, 1, 2]


def test_resume_in_a_new_sampler_continues_without_gaps(store, sampler):
    fit_a = start_fit(store, sampler, gaussian_provenance())
    run_fit(store, sampler, fit_a, n_blocks=4)
    fit_b = start_fit(store, sampler, gaussian_provenance())
    run_fit(store, sampler, fit_b, n_blocks=2)
    run_fit(store, gaussian_sampler(), fit_b, n_blocks=4)
    assert np.array_equal(store.draws(fit_a)["mu"], store.draws(fit_b)["mu"])


def test_sigkill_mid_fit_then_resume_gives_the_uninterrupted_chain(sqlite_url, sampler):
    catalog_db.upgrade(sqlite_url)
    store = ChainStore(sqlite_url)
    fit_id = start_fit(store, sampler, gaussian_provenance())
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "chain_fixtures.py"), sqlite_url, fit_id, str(N_BLOCKS)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    try:
        deadline = time.monotonic() + 240
        while not store.block_indices(fit_id):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the subprocess committed no block"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    done = store.block_indices(fit_id)
    assert 1 <= len(done) < N_BLOCKS, done
    run_fit(store, sampler, fit_id, n_blocks=N_BLOCKS)
    assert store.block_indices(fit_id) == list(range(N_BLOCKS))
    resumed = store.draws(fit_id)["mu"]
    assert resumed.shape == (4, N_BLOCKS * BLOCK)
    reference = start_fit(store, sampler, gaussian_provenance())
    run_fit(store, sampler, reference, n_blocks=N_BLOCKS)
    assert np.array_equal(resumed, store.draws(reference)["mu"])


def test_until_converged_stops_at_the_gate_and_result_is_gated(store, sampler):
    fit_id = start_fit(store, sampler, gaussian_provenance())
    with pytest.raises(EmptyFitError):
        store.result(fit_id)
    report = run_fit(store, sampler, fit_id, max_draws=3000)
    assert report.passed and store.fit(fit_id).status == "converged"
    assert store.result(fit_id).report.passed
    strict = GateConfig(min_ess_bulk=1e6, min_ess_tail=1e6)
    with pytest.raises(NotConvergedError) as info:
        store.result(fit_id, gate=strict)
    assert info.value.report.parameters[0].ess_bulk == pytest.approx(
        report.parameters[0].ess_bulk)
    assert not store.result(fit_id, gate=strict, allow_unconverged=True).report.passed


def test_netcdf_round_trip_keeps_draws_and_provenance(sqlite_url, sampler, tmp_path):
    import arviz as az

    catalog_db.upgrade(sqlite_url)
    store = ChainStore(sqlite_url)
    fit_id = start_fit(store, sampler, gaussian_provenance())
    run_fit(store, sampler, fit_id, max_draws=3000)
    path = store.export_netcdf(fit_id, tmp_path / "out" / "fit.nc")
    assert sorted(p.name for p in path.parent.iterdir()) == ["fit.nc"]
    idata = az.from_netcdf(path)
    assert np.array_equal(idata.posterior["mu"].values, store.draws(fit_id)["mu"])
    attrs = idata.posterior.attrs
    prov = gaussian_provenance()
    assert attrs["data_sha256"] == prov.data_sha256 and attrs["model"] == "gaussian_mean"
    assert int(attrs["seed"]) == 0 and attrs["code_version"] == prov.code_version
    assert "Normal" in attrs["priors"] and int(attrs["converged"]) == 1
    assert idata.sample_stats["diverging"].shape == (4, idata.posterior.sizes["draw"])


def test_unknown_fit_and_mismatched_settings_are_refused(sqlite_url, sampler):
    catalog_db.upgrade(sqlite_url)
    store = ChainStore(sqlite_url)
    with pytest.raises(UnknownFitError, match="no fit 'nope'"):
        run_fit(store, sampler, "nope", n_blocks=1)
    fit_id = start_fit(store, sampler, gaussian_provenance())
    assert store.fit_ids() == [fit_id] == store.fit_ids("gaussian_mean")
    assert store.fit_ids("disk") == []
    other = BlockSampler(sampler.model, sampler.model_args,
                         config=SamplerConfig(num_warmup=200, block_size=100, seed=9))
    with pytest.raises(FitMismatchError, match="seed"):
        run_fit(store, other, fit_id, n_blocks=1)
    changed = replace(gaussian_provenance(), data_sha256="0" * 64)
    with pytest.raises(FitMismatchError, match="same data"):
        run_fit(store, sampler, fit_id, n_blocks=1, provenance=changed)
    assert store.block_indices(fit_id) == []


def test_a_fit_stored_before_the_start_setting_existed_resumes(sqlite_url, sampler):
    catalog_db.upgrade(sqlite_url)
    store = ChainStore(sqlite_url)
    older = {k: v for k, v in sampler.config.to_dict().items()
             if k not in ("start", "n_starts")}
    fit_id = store.create_fit(gaussian_provenance(), older)
    store.save_warmup(fit_id, encode_state(sampler.warmup()))
    run_fit(store, sampler, fit_id, n_blocks=1)
    assert store.block_indices(fit_id) == [0]
    optimum = BlockSampler(sampler.model, sampler.model_args,
                           config=replace(sampler.config, start="optimum"))
    with pytest.raises(FitMismatchError, match="start"):
        run_fit(store, optimum, fit_id, n_blocks=1)


def test_a_wall_time_budget_starts_no_block_once_spent(sqlite_url, sampler):
    catalog_db.upgrade(sqlite_url)
    store = ChainStore(sqlite_url)
    fit_id = start_fit(store, sampler, gaussian_provenance())
    run_fit(store, sampler, fit_id, n_blocks=1)
    assert run_fit(store, sampler, fit_id, max_draws=100 * BLOCK, max_seconds=0.0) is not None
    assert store.block_indices(fit_id) == [0]  # budget spent: nothing more drawn
    run_fit(store, sampler, fit_id, max_draws=100 * BLOCK, max_seconds=1e6)
    assert len(store.block_indices(fit_id)) > 1


def test_the_optima_found_before_a_fit_are_stored_with_it(store, sampler, tmp_path):
    """A fit started at the optimum keeps what the optimisation found (every optimum, its
    gap and starts) in its row, its result and its netCDF; a prior start keeps none."""
    import arviz as az

    optimum = BlockSampler(sampler.model, sampler.model_args,
                           config=replace(sampler.config, start="optimum", n_starts=4))
    fit_id = start_fit(store, optimum, gaussian_provenance())
    stored = store.fit(fit_id).start_report
    assert stored == optimum.start_report.to_dict() | {"optima": stored["optima"]}
    assert stored["n_starts"] == 4 and stored["optima"][0]["delta"] == 0.0
    assert sum(o["starts"] for o in stored["optima"]) == 4 - stored["failed_starts"]
    run_fit(store, optimum, fit_id, max_draws=3000)
    assert store.result(fit_id).start_report == stored
    idata = az.from_netcdf(store.export_netcdf(fit_id, tmp_path / "fit.nc"))
    assert json.loads(idata.posterior.attrs["start_report"]) == stored
    prior = start_fit(store, sampler, gaussian_provenance())
    assert store.fit(prior).start_report is None
