"""The Bayes factor on the small synthetic bow-shock cube of the fit tests: nested
sampling over the same likelihood and priors as the NUTS fits favours the bow shock
over the disk, decisively. ``slow`` and long: 30 minutes on 2 shared cores at a load
average of 20 (the bow shock 3.5 minutes, the disk 26), so not in ``.ci/run``."""

from __future__ import annotations

import json

import pytest
from fit_fixtures import FREE, write_cube, write_priors

from exocube.ifu.evidence import NestedConfig, bayes_factor, problem_evidence
from exocube.ifu.fit import FitSettings, prepare
from exocube.ifu.priors import load_priors_toml, priors_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

DISK_FREE = ("v_sys", "sigma", "sb_halpha", "h_r")


def disk_priors():
    """The disk of tests/ifu/test_fit.py: four free parameters, geometry fixed."""
    fixed = {n: ["fixed", p.centre()] for n, p in priors_for("disk").items()
             if n not in DISK_FREE}
    fixed.update({"pa_deg": ["fixed", 210.0], "incl_deg": ["fixed", 85.0],
                  "x0": ["fixed", 0.0], "y0": ["fixed", 0.0]})
    return priors_for("disk", fixed)


@pytest.fixture(scope="module")
def problems(tmp_path_factory):
    folder = tmp_path_factory.mktemp("evidence")
    cube, truth = write_cube(folder)
    bow = prepare(cube, FitSettings("bowshock", psf_fwhm=0.0),
                  load_priors_toml(write_priors(folder, truth), "bowshock"))
    disk = prepare(cube, FitSettings("disk", psf_fwhm=0.0), disk_priors())
    return {"bowshock": bow, "disk": disk, "truth": truth, "cube": cube, "folder": folder}


def test_the_bayes_factor_favours_the_bow_shock(problems):
    cfg = NestedConfig(num_live=300, num_delete=30, seed=1)
    ev = {m: problem_evidence(problems[m], cfg) for m in ("bowshock", "disk")}
    out = bayes_factor(ev)
    print(json.dumps({m: {k: v for k, v in e.to_dict().items() if k != "provenance"}
                      for m, e in ev.items()}, indent=1))
    assert set(ev["bowshock"].free) == set(FREE) and set(ev["disk"].free) == set(DISK_FREE)
    assert out["ln_B"] > 10 * out["ln_B_err"] and out["ln_B"] > 5.0
    for e in ev.values():
        assert e.converged and 0 < e.log_z_err < 0.5
        assert e.provenance["data_sha256"] == problems["bowshock"].cube.sha256
    # the nested-sampling posterior of the true model sits on the truth
    truth = problems["truth"]
    mean, sd = ev["bowshock"].posterior_mean, ev["bowshock"].posterior_sd
    for name in FREE:
        assert abs(mean[name] - truth[name]) < 3 * sd[name], (name, mean[name], sd[name])
