"""Hard physics constraints (constraints="hard") and the v2 inputs (the climate drivers).

A hard-constrained model's ``zg`` is the hypsometric integral of its ``ta`` and
``hus`` and its ``hus`` is relative humidity times ``q_sat``: the residuals the
evaluation reports must be at rounding level whatever the weights, trained or not.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from ml_store import fit_cli

from exocube import physics
from exocube.errors import ConfigError
from exocube.gcm.generator import generate
from exocube.grid import DEFAULT_GRID
from exocube.ml import losses, thermo
from exocube.ml.datamodule import CubeDataModule
from exocube.ml.evaluate import evaluate_checkpoint
from exocube.ml.hull import ExtrapolationWarning
from exocube.ml.task import SurrogateTask
from exocube.params import MODEL_INPUT_NAMES_V2, MODEL_INPUT_SPECS_V2, validate_params
from exocube.planet import derive

ROUNDING = 1.0e-4  # the done-when bound on the relative hydrostatic residual


def random_drivers(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Parameters across the whole v2 input ranges (log-uniform where log-scaled)."""
    rng = np.random.default_rng(seed)
    cols = []
    for name in MODEL_INPUT_NAMES_V2:
        s = MODEL_INPUT_SPECS_V2[name]
        lo, hi = (np.log(s.low), np.log(s.high)) if s.log_scale else (s.low, s.high)
        x = rng.uniform(lo, hi, n)
        cols.append(np.exp(x) if s.log_scale else x)
    values = np.stack(cols, axis=1)
    ps = values[:, MODEL_INPUT_NAMES_V2.index("surface_pressure_bar")]
    for gas in ("pco2_bar", "pch4_bar"):  # keep the partial pressures inside ps
        j = MODEL_INPUT_NAMES_V2.index(gas)
        values[:, j] = np.minimum(values[:, j], 0.4 * ps)
    return values, rng.random(n) < 0.5


def residuals(task: SurrogateTask, values: np.ndarray, locked: np.ndarray
              ) -> tuple[float, float, int]:
    """Largest relative hypsometric residual, largest humidity violation [kg/kg] and the
    number of valid layers of the task's predictions (NaN below ground is masked)."""
    with warnings.catch_warnings():  # random parameters lie outside the tiny store's hull
        warnings.simplefilter("ignore", ExtrapolationWarning)
        out = task.predict(values, locked)
    t = {v: torch.tensor(out[v], dtype=torch.float64) for v in ("ta", "hus", "zg")}
    valid = torch.isfinite(t["zg"])
    col = {n: torch.tensor(values[:, i]) for i, n in enumerate(task.spec.params.names)}
    g = col["gravity_m_s2"]
    r = thermo.gas_constant(col["pco2_bar"], col["surface_pressure_bar"])
    ta = torch.where(valid, t["ta"], torch.full_like(t["ta"], 250.0))
    hus = torch.where(valid, t["hus"], torch.zeros_like(t["hus"]))
    zg = torch.where(valid, t["zg"], torch.zeros_like(t["zg"]))
    res, layer_valid = losses.hydrostatic_residual(ta, hus, zg, task.plev.double(), g, valid, r)
    viol = losses.humidity_violation(hus, ta, task.plev.double())[valid]
    return float(res.abs().max()), float(viol.max()), int(layer_valid.sum())


@pytest.fixture(scope="module")
def v2_spec(tiny_store: str, store_db: str):
    return CubeDataModule(tiny_store, inputs="v2", database_url=store_db).spec


def test_hypsometric_height_reproduces_the_generator() -> None:
    planet = derive(validate_params({
        "radius_earth": 1.3, "mass_earth": 2.5, "orbital_period_days": 12.0,
        "insolation_earth": 0.9, "stellar_teff_k": 3400.0, "stellar_logg_cgs": 4.9,
        "stellar_metallicity_dex": 0.0, "host_mass_msun": 0.3, "surface_pressure_bar": 0.7}))
    f = generate(planet).fields
    ta, hus, zg, ts = (torch.tensor(f[v], dtype=torch.float64) for v in ("ta", "hus", "zg", "ts"))
    plev = torch.tensor(DEFAULT_GRID.plev_array)
    ps = torch.full_like(ts, planet.surface_pressure_pa)
    hus_s = 0.77 * torch.tensor(physics.q_sat(f["ts"].astype(float), planet.surface_pressure_pa))
    built = thermo.hypsometric_height(torch.nan_to_num(ta, nan=250.0),
                                      torch.nan_to_num(hus), ps, plev,
                                      torch.tensor([planet.gravity]),
                                      torch.tensor([planet.r_gas]), ts, hus_s)
    valid = torch.isfinite(zg)
    assert valid.sum() > 0 and (~valid).sum() > 0  # 2 bar bottom level: below 0.7 bar ground
    np.testing.assert_allclose(built[valid].numpy(), zg[valid].numpy(), rtol=1e-5, atol=0.1)


def test_untrained_hard_model_is_hydrostatic_and_subsaturated(v2_spec) -> None:
    torch.manual_seed(3)
    task = SurrogateTask(depth=1, base_features=4, data_spec=v2_spec, constraints="hard")
    values, locked = random_drivers(16, seed=1)
    hydro, humid, n_layers = residuals(task, values, locked)
    assert n_layers > 0
    assert hydro < ROUNDING
    assert humid == 0.0
    assert task.physics_terms == ["mass_continuity"]  # built in: no soft term for them


def test_hydrostatic_under_any_mask(v2_spec) -> None:
    """Every pair of adjacent levels is hydrostatic, also below the predicted surface: a
    store's truth may keep a level that the prediction puts underground."""
    torch.manual_seed(5)
    task = SurrogateTask(depth=1, base_features=4, data_spec=v2_spec, constraints="hard")
    values, locked = random_drivers(16, seed=3)
    p = torch.tensor(values, dtype=torch.float32)
    with torch.no_grad():
        f3, f2, _ = task.physical(p, torch.tensor(locked))
    col = {n: torch.tensor(values[:, i]) for i, n in enumerate(task.spec.params.names)}
    r = thermo.gas_constant(col["pco2_bar"], col["surface_pressure_bar"])
    c = task.ch
    every = torch.ones_like(f3[:, 0], dtype=torch.bool)
    ps = f2[:, task.v2.index("ps")]
    assert (task.plev.reshape(1, -1, 1, 1) > ps.unsqueeze(1)).any()  # some levels underground
    res, _ = losses.hydrostatic_residual(*(f3[:, c[v]].double() for v in ("ta", "hus", "zg")),
                                         task.plev.double(), col["gravity_m_s2"], every, r)
    assert float(res.abs().max()) < ROUNDING


def test_soft_model_breaks_both_constraints(v2_spec) -> None:
    """The same check on a free-output model fails: the check can fail."""
    torch.manual_seed(3)
    task = SurrogateTask(depth=1, base_features=4, data_spec=v2_spec, constraints="soft")
    hydro, humid, _ = residuals(task, *random_drivers(16, seed=1))
    assert hydro > 0.01 and humid > 0.0


def test_extreme_outputs_stay_in_bounds(v2_spec) -> None:
    """Weights scaled up (outputs far from the climatology): still no violation."""
    torch.manual_seed(4)
    task = SurrogateTask(depth=1, base_features=4, data_spec=v2_spec, constraints="hard")
    with torch.no_grad():
        for p in task.unet.parameters():
            p.mul_(4.0)
    hydro, humid, _ = residuals(task, *random_drivers(32, seed=2))
    assert hydro < ROUNDING and humid == 0.0


def test_unknown_constraints_and_inputs_are_refused(v2_spec, tiny_store: str) -> None:
    with pytest.raises(ConfigError, match="constraints='strict'"):
        SurrogateTask(data_spec=v2_spec, constraints="strict")
    with pytest.raises(ConfigError, match="inputs='v3'"):
        CubeDataModule(tiny_store, inputs="v3")


@pytest.fixture(scope="module")
def hard_fit(tiny_store: str, store_db: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fit-hard")
    fit_cli(tiny_store, store_db, root, "--model.constraints", "hard", "--data.inputs", "v2")
    return sorted(root.rglob("best-*.ckpt"))[0]


def test_trained_hard_model_evaluates_at_rounding_level(hard_fit: Path, tiny_store: str,
                                                        store_db: str, tmp_path: Path) -> None:
    result = evaluate_checkpoint(str(hard_fit), tiny_store, out_dir=tmp_path / "eval",
                                 database_url=store_db, with_baselines=False)
    m = json.loads(result.json_path.read_text())
    unet = m["models"]["unet"]["physics"]
    assert unet["hydrostatic_rel_rms"] < ROUNDING
    assert unet["humidity_violation_fraction"] == 0.0
    assert unet["humidity_violation_rms"] == 0.0
    # the truth's residuals stay next to the model's
    assert set(m["truth"]["physics"]) == set(unet)
    assert m["truth"]["physics"]["hydrostatic_rel_rms"] < 1e-3


def test_hard_v2_checkpoint_round_trip(hard_fit: Path) -> None:
    task = SurrogateTask.load_from_checkpoint(str(hard_fit), map_location="cpu")
    assert task.hparams.constraints == "hard"
    assert task.spec.params.names == MODEL_INPUT_NAMES_V2
    values, locked = task.spec.training_params()
    again = SurrogateTask.load_from_checkpoint(str(hard_fit), map_location="cpu")
    a, b = task.predict(values[:2], locked[:2]), again.predict(values[:2], locked[:2])
    for v in a:
        np.testing.assert_array_equal(a[v], b[v])
    hydro, humid, _ = residuals(task, values, locked)
    assert hydro < ROUNDING and humid == 0.0
