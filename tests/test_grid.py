"""The grid's area weights: one function for NumPy arrays and torch tensors."""

from __future__ import annotations

import numpy as np
import torch

from exocube.grid import Grid, latitude_weights


def test_latitude_weights_have_mean_one_for_torch_and_numpy() -> None:
    lat = [-60.0, 0.0, 60.0]
    w_torch = latitude_weights(torch.tensor(lat))
    np.testing.assert_allclose(w_torch.numpy(), [0.75, 1.5, 0.75], rtol=1e-6)
    w_numpy = latitude_weights(np.asarray(lat))
    assert isinstance(w_numpy, np.ndarray)
    np.testing.assert_allclose(w_numpy, [0.75, 1.5, 0.75], rtol=1e-12)


def test_weighted_mean_of_sin_squared_is_one_third() -> None:
    lat = Grid(nlat=720, nlon=4).lat  # the area mean of sin^2(lat) over a sphere is 1/3
    w = latitude_weights(lat)
    np.testing.assert_allclose(np.mean(w * np.sin(np.deg2rad(lat)) ** 2), 1.0 / 3.0, rtol=1e-5)
