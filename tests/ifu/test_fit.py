"""Fits of a small synthetic cube: the gate refuses a short run with its numbers,
a longer run recovers the truth inside its 90 % intervals and passes; netCDF round
trip with provenance and the per-spaxel log-likelihood; PSIS-LOO prefers the true
hypothesis; the report's figures. One warm-up (about 100 s on 2 shared cores) serves
the module: every test here is ``slow``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fit_fixtures import BLOCK, FREE, WARMUP, write_cube, write_priors

from exocube.catalog import db as catalog_db
from exocube.ifu.chains import ChainStore
from exocube.ifu.fit import FitSettings, advance, loo_compare, prepare, start
from exocube.ifu.gate import NotConvergedError, import_arviz
from exocube.ifu.priors import load_priors_toml, priors_for
from exocube.ifu.sampling import SamplerConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fit")
    cube, truth = write_cube(folder)
    url = f"sqlite:///{folder / 'catalog.db'}"
    catalog_db.upgrade(url)
    store = ChainStore(url)
    priors = load_priors_toml(write_priors(folder, truth), "bowshock")
    problem = prepare(cube, FitSettings("bowshock", psf_fwhm=0.0), priors)
    config = SamplerConfig(num_warmup=WARMUP, block_size=BLOCK, seed=3)
    fit_id = start(store, problem, config)
    short = advance(store, problem, fit_id, draws=BLOCK)
    with pytest.raises(NotConvergedError) as refused:
        store.result(fit_id)
    final = advance(store, problem, fit_id, until_converged=True, max_draws=2000)
    return dict(folder=folder, cube=cube, truth=truth, store=store, problem=problem,
                fit_id=fit_id, short=short, refused=refused.value, final=final)


def test_a_short_run_is_refused_by_the_gate_with_its_numbers(fitted):
    short, err = fitted["short"], fitted["refused"]
    assert not short.passed and short.n_draws == BLOCK and short.n_chains == 4
    msg = str(err)
    assert f"not converged after {BLOCK} draws x 4 chains" in msg
    assert "ESS" in msg and "(needs >= 400.0)" in msg
    assert err.report.to_dict() == short.to_dict()


def test_the_fit_recovers_the_truth_inside_its_90_percent_intervals(fitted):
    store, fit_id, truth = fitted["store"], fitted["fit_id"], fitted["truth"]
    res = store.result(fit_id)  # passes the gate, else NotConvergedError
    assert res.report.passed and fitted["final"].passed
    assert sorted(res.draws) == sorted(FREE)
    assert store.fit(fit_id).status == "converged"
    for name in FREE:
        lo, hi = np.percentile(res.draws[name], [5, 95])
        assert lo <= truth[name] <= hi, (name, lo, truth[name], hi)


def test_inference_data_round_trip_with_provenance_and_loglik(fitted, tmp_path):
    az = import_arviz()
    store, problem, fit_id = fitted["store"], fitted["problem"], fitted["fit_id"]
    draws = store.draws(fit_id)
    loglik = problem.pointwise(draws)
    assert loglik.shape == (*draws["v_sys"].shape, problem.likelihood.spaxel_iy.size)
    path = store.export_netcdf(fit_id, tmp_path / "fit.nc", log_likelihood={"cube": loglik})
    idata = az.from_netcdf(path)
    assert np.array_equal(idata.posterior["sigma"].values, draws["sigma"])
    assert np.array_equal(idata.log_likelihood["cube"].values, loglik)
    attrs = idata.posterior.attrs
    assert attrs["data_sha256"] == problem.cube.sha256 and attrs["model"] == "bowshock"
    assert json.loads(attrs["priors"])["v_far"] == ["uniform", -800.0, 800.0]
    assert json.loads(attrs["priors"])["pa_deg"] == ["fixed", 210.0]
    assert attrs["seed"] == 3 and attrs["converged"] == 1
    settings = json.loads(attrs["settings"])
    assert settings["lines"] == ["[NII]6550", "Halpha", "[NII]6585"]
    assert settings["continuum_degree"] == 1 and settings["error_inflation"] == 1.0
    # the pointwise values sum to the log-likelihood the sampler used
    one = {k: float(draws[k][0, 0]) for k in FREE}
    like = problem.likelihood
    total = float(like.log_likelihood(problem.forward.cube(problem.values(one)), like.data))
    assert float(loglik[0, 0].sum()) == pytest.approx(total, rel=1e-5)


@pytest.fixture(scope="module")
def disk_fit(fitted):
    """The disk (free v_sys, sigma, sb_halpha, h_r) fitted to the bow-shock cube."""
    store, cube = fitted["store"], fitted["cube"]
    free = {"v_sys", "sigma", "sb_halpha", "h_r"}
    fixed = {n: ["fixed", p.centre()] for n, p in priors_for("disk").items() if n not in free}
    fixed.update({"pa_deg": ["fixed", 210.0], "incl_deg": ["fixed", 85.0],
                  "x0": ["fixed", 0.0], "y0": ["fixed", 0.0]})
    disk = prepare(cube, FitSettings("disk", psf_fwhm=0.0), priors_for("disk", fixed))
    disk_id = start(store, disk, SamplerConfig(num_warmup=WARMUP, block_size=BLOCK, seed=3))
    rep = advance(store, disk, disk_id, until_converged=True, max_draws=2000)
    if not rep.passed:
        pytest.fail(f"the disk fit did not converge: {rep.failures()}")
    return disk, disk_id


def test_loo_prefers_the_true_hypothesis(fitted, disk_fit):
    store = fitted["store"]
    disk, disk_id = disk_fit
    out = loo_compare({"bowshock": (store, fitted["problem"], fitted["fit_id"]),
                       "disk": (store, disk, disk_id)})
    best, other = out["ranking"]
    assert best["model"] == "bowshock" and best["elpd_diff"] == 0.0
    assert other["elpd_diff"] > 5 * other["dse"]  # decisively worse
    assert best["n_points"] == fitted["problem"].likelihood.spaxel_iy.size


def test_compare_and_report_commands_on_stored_fits(fitted, disk_fit, tmp_path, capsys):
    from exocube.cli import main

    url, cube = fitted["store"].url, str(fitted["cube"])

    def call(*args):
        try:
            main(list(args))
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0

    assert call("ifu", "compare", cube, "--db", url, "--bowshock-fit", fitted["fit_id"],
                "--disk-fit", disk_fit[1]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in out["ranking"]] == ["bowshock", "disk"]
    assert call("ifu", "report", fitted["fit_id"], "--db", url, "--out", str(tmp_path),
                "--cube", cube) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["status"] == "converged" and set(rep["posterior"]) == set(FREE)
    assert sorted(p.rsplit("_", 1)[1] for p in rep["figures"]) == [
        "corner.png", "model.png", "rank.png", "trace.png"]


def test_report_figures(fitted, tmp_path):
    from exocube.ifu import fitplots
    from exocube.ifu.fit import data_and_model, median_draw

    res = fitted["store"].result(fitted["fit_id"])
    problem = fitted["problem"]
    data, model, chi = data_and_model(problem, median_draw(res.draws))
    # residuals of the posterior median are noise: rms (data - model) / err near 1
    assert 0.85 < float(np.nanmedian(chi)) < 1.15
    fig = fitplots.data_model_figure(data, model, chi, 0.964, pa_deg=210.0)
    paths = [fitplots.save(fig, tmp_path / "dm.png"),
             fitplots.save(fitplots.trace_figure(res.draws), tmp_path / "trace.png"),
             fitplots.save(fitplots.rank_figure(res.draws), tmp_path / "rank.png"),
             fitplots.save(fitplots.corner_figure(res.draws, fitted["truth"]),
                           tmp_path / "corner.png")]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
