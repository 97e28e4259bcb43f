"""Parameter encoding, normalisation, and augmentations that keep the physics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ml_store import TINY_GRID, consistent_fields, sample_params

from exocube.grid import FIELDS_2D, FIELDS_3D
from exocube.ml import losses
from exocube.ml.transforms import (
    Augmentation,
    HemisphericMirror,
    LongitudeRoll,
    Normaliser,
    encode_params,
)
from exocube.params import MODEL_INPUT_NAMES_V1, MODEL_INPUT_SPECS_V1
from exocube.physics import surface_gravity

PLEV = torch.tensor(TINY_GRID.plev_array, dtype=torch.float32)
LAT = torch.tensor(TINY_GRID.lat, dtype=torch.float32)


def test_encode_params_maps_ranges_to_unit_interval() -> None:
    specs = [MODEL_INPUT_SPECS_V1[n] for n in MODEL_INPUT_NAMES_V1]
    lo = torch.tensor([[s.low for s in specs]], dtype=torch.float64)
    hi = torch.tensor([[s.high for s in specs]], dtype=torch.float64)
    locked = torch.tensor([True])
    torch.testing.assert_close(encode_params(lo, locked), torch.tensor([[-1.0] * 11 + [1.0]],
                                                                       dtype=torch.float64))
    torch.testing.assert_close(encode_params(hi, ~locked), torch.tensor([[1.0] * 11 + [-1.0]],
                                                                        dtype=torch.float64))


def test_encoding_of_no_co2_is_finite_and_at_the_low_end() -> None:
    """pco2_bar = 0 is valid; the v1 encoding log-scales pCO2, so 0 encodes as 1e-6 bar."""
    specs = [MODEL_INPUT_SPECS_V1[n] for n in MODEL_INPUT_NAMES_V1]
    row = torch.tensor([[0.5 * (s.low + s.high) for s in specs]], dtype=torch.float64)
    j = MODEL_INPUT_NAMES_V1.index("pco2_bar")
    rows = row.repeat(3, 1)
    rows[:, j] = torch.tensor([0.0, 1e-6, 1e-4], dtype=torch.float64)
    enc = encode_params(rows, torch.tensor([False] * 3))
    assert torch.isfinite(enc).all()
    assert enc[0, j] == enc[1, j] == -1.0 and enc[2, j] > -1.0


@pytest.fixture(scope="module")
def physical_batch() -> tuple[dict[str, torch.Tensor], Normaliser]:
    rng = np.random.default_rng(5)
    n = 6
    p = sample_params(n, rng)
    locked = np.array([True, False] * 3)
    f = consistent_fields(p, TINY_GRID, locked, rng, n_time=1)
    stats = {}
    for v in FIELDS_3D:
        a = np.where(np.isfinite(f[v][:, 0]), f[v][:, 0], 0.0)  # all-NaN level: mean 0
        stats[v] = {"mean": a.mean(axis=(0, 2, 3)).tolist(),
                    "std": np.maximum(a.std(axis=(0, 2, 3)), 1e-3).tolist()}
    for v in FIELDS_2D:
        stats[v] = {"mean": float(np.mean(f[v])), "std": float(np.std(f[v]))}
    norm = Normaliser(FIELDS_3D, FIELDS_2D, stats)
    x3 = torch.tensor(np.stack([f[v][:, 0] for v in FIELDS_3D], 1))
    x2 = torch.tensor(np.stack([f[v][:, 0] for v in FIELDS_2D], 1))
    m3, m2 = torch.isfinite(x3), torch.isfinite(x2)
    batch = {"x3": torch.where(m3, norm.norm3(torch.nan_to_num(x3)), 0.0), "m3": m3,
             "x2": torch.where(m2, norm.norm2(x2), 0.0), "m2": m2,
             "tidally_locked": torch.tensor(locked),
             "gravity": torch.tensor(surface_gravity(p["mass_earth"], p["radius_earth"]),
                                     dtype=torch.float32)}
    return batch, norm


def _augmentation(norm: Normaliser, noise: float = 0.0) -> Augmentation:
    c = FIELDS_3D.index("va")
    offset = (-2 * norm.mean3[c] / norm.std3[c]).flatten()
    return Augmentation(roll=True, mirror=True, noise_std=noise, va_channel=c, va_offset=offset)


def _physical(batch: dict[str, torch.Tensor], norm: Normaliser) -> dict[str, torch.Tensor]:
    f3 = norm.denorm3(batch["x3"])
    return {v: f3[:, i].double() for i, v in enumerate(FIELDS_3D)}


def test_normaliser_round_trip(physical_batch) -> None:
    batch, norm = physical_batch
    torch.testing.assert_close(norm.norm3(norm.denorm3(batch["x3"])), batch["x3"])
    torch.testing.assert_close(norm.norm2(norm.denorm2(batch["x2"])), batch["x2"])


def test_augmentation_keeps_hydrostatic_balance_and_humidity_bounds(physical_batch) -> None:
    batch, norm = physical_batch
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        out = _augmentation(norm)(batch, gen)
        f = _physical(out, norm)
        valid = out["m3"][:, 0]
        hydro = losses.hydrostatic_loss(f["ta"], f["hus"], f["zg"], PLEV.double(),
                                        out["gravity"].double(), valid)
        assert float(hydro) < 1e-9  # float32 storage round-off only
        hum = losses.humidity_violation(f["hus"], f["ta"], PLEV.double())
        assert float((hum * valid).max()) < 1e-9
    noisy = _augmentation(norm, noise=0.1)(batch, gen)
    f = _physical(noisy, norm)
    hydro = losses.hydrostatic_loss(f["ta"], f["hus"], f["zg"], PLEV.double(),
                                    noisy["gravity"].double(), noisy["m3"][:, 0])
    assert float(hydro) > 1e-6  # noise does perturb the balance, as documented


def test_mirror_flips_latitude_and_negates_va(physical_batch) -> None:
    batch, norm = physical_batch
    c = FIELDS_3D.index("va")
    offset = (-2 * norm.mean3[c] / norm.std3[c]).flatten()
    out = HemisphericMirror(c, offset, p=1.0)(batch)
    before, after = _physical(batch, norm), _physical(out, norm)
    valid = out["m3"][:, c]
    torch.testing.assert_close(torch.where(valid, after["va"], 0.0),
                               torch.where(valid, -before["va"].flip(-2), 0.0),
                               atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(after["ta"], before["ta"].flip(-2))
    twice = HemisphericMirror(c, offset, p=1.0)(out)
    torch.testing.assert_close(twice["x3"], batch["x3"], atol=1e-5, rtol=1e-5)
    # the column mass divergence only changes sign with the mirror, so its loss is unchanged
    f0, f1 = before, after
    l0 = losses.mass_continuity_loss(f0["ua"], f0["va"], batch["m3"][:, 0], PLEV, LAT)
    l1 = losses.mass_continuity_loss(f1["ua"], f1["va"], out["m3"][:, 0], PLEV, LAT)
    assert float(l1) == pytest.approx(float(l0), rel=1e-4)


def test_roll_spares_tidally_locked_runs(physical_batch) -> None:
    batch, _ = physical_batch
    out = LongitudeRoll()(batch, torch.Generator().manual_seed(3))
    locked = batch["tidally_locked"]
    torch.testing.assert_close(out["x3"][locked], batch["x3"][locked])
    moved = [not torch.equal(out["x3"][i], batch["x3"][i]) for i in torch.nonzero(~locked)[:, 0]]
    assert any(moved)
    for i in torch.nonzero(~locked)[:, 0]:  # a rotation: some shift reproduces it exactly
        shifts = [k for k in range(TINY_GRID.nlon)
                  if torch.equal(torch.roll(batch["x3"][i], k, -1), out["x3"][i])]
        assert shifts
