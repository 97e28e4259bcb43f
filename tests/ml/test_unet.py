"""The sphere-aware U-Net: periodic longitude, pole folding, shapes, forcing maps."""

from __future__ import annotations

import math

import pytest
import torch

from exocube.errors import ConfigError
from exocube.ml.unet import N_FORCING, SpherePad3d, SphereUNet3d, forcing_maps, pool_factors
from exocube.physics import S_EARTH, SIGMA_SB

GRID = (4, 8, 16)


def _field() -> torch.Tensor:
    """A smooth field over (plev, lat, lon) that is not symmetric in any direction."""
    lev = torch.arange(GRID[0]).reshape(-1, 1, 1).float()
    lat = torch.linspace(-80, 80, GRID[1]).reshape(1, -1, 1)
    lon = (torch.arange(GRID[2]) * 360 / GRID[2]).reshape(1, 1, -1)
    f = lev + 0.01 * lat + torch.sin(torch.deg2rad(lon)) + 0.3 * torch.cos(2 * torch.deg2rad(lon))
    return f.reshape(1, 1, *GRID)


def test_longitude_padding_is_periodic_across_0_360() -> None:
    x = _field()
    pad = SpherePad3d(1)(x)
    assert pad.shape == (1, 1, GRID[0] + 2, GRID[1] + 2, GRID[2] + 2)
    core = pad[..., 1:-1, 1:-1, :]
    torch.testing.assert_close(core[..., 0], x[..., -1])  # west of 0 deg is the last column
    torch.testing.assert_close(core[..., -1], x[..., 0])  # east of 360 deg is the first
    shifted = torch.roll(x, 3, dims=-1)  # the same field moved across the 0/360 seam
    torch.testing.assert_close(SpherePad3d(1)(shifted)[..., 1:-1],
                               torch.roll(pad[..., 1:-1], 3, dims=-1))


def test_latitude_padding_folds_over_the_poles() -> None:
    x = _field()
    pad = SpherePad3d(1)(x)[:, :, 1:-1, :, 1:-1]  # drop plev and lon padding
    half = GRID[2] // 2
    for j in range(GRID[2]):
        torch.testing.assert_close(pad[..., -1, j], x[..., -1, (j + half) % GRID[2]])
        torch.testing.assert_close(pad[..., 0, j], x[..., 0, (j + half) % GRID[2]])


def test_pressure_padding_replicates() -> None:
    x = _field()
    pad = SpherePad3d(1)(x)[..., 1:-1, 1:-1]
    torch.testing.assert_close(pad[:, :, 0], x[:, :, 0])
    torch.testing.assert_close(pad[:, :, -1], x[:, :, -1])


def test_unet_is_equivariant_to_longitude_rotation() -> None:
    """Rotating the forcing rotates the output, also across the seam: the net has no edge."""
    net = SphereUNet3d(GRID, n_params=3, out_3d=2, out_2d=1, depth=2, base_features=4).double()
    torch.manual_seed(1)
    for p in net.parameters():  # non-zero FiLM so the parameters matter too
        torch.nn.init.normal_(p, std=0.2)
    forcing = torch.randn(2, N_FORCING, *GRID, dtype=torch.float64)
    params = torch.randn(2, 3, dtype=torch.float64)
    shift = 4  # a multiple of the total pooling factor in longitude (2 * 2)
    out3, out2 = net(forcing, params)
    r3, r2 = net(torch.roll(forcing, shift, dims=-1), params)
    torch.testing.assert_close(r3, torch.roll(out3, shift, dims=-1))
    torch.testing.assert_close(r2, torch.roll(out2, shift, dims=-1))
    assert out3.shape == (2, 2, *GRID) and out2.shape == (2, 1, *GRID[1:])


def test_forward_checks_shapes() -> None:
    net = SphereUNet3d(GRID, n_params=3, out_3d=2, out_2d=0, depth=1, base_features=4)
    with pytest.raises(ValueError, match="forcing must be"):
        net(torch.zeros(1, N_FORCING, 4, 8, 12), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="params must be"):
        net(torch.zeros(1, N_FORCING, *GRID), torch.zeros(1, 4))
    with pytest.raises(ConfigError, match="even number of longitudes"):
        SphereUNet3d((4, 8, 15), 3, 1, 0)


def test_pool_factors_on_the_default_grid() -> None:
    assert pool_factors((20, 32, 64), 3) == [(2, 2, 2), (2, 2, 2), (1, 2, 2)]


def test_forcing_maps() -> None:
    lat = torch.tensor([-60.0, 0.0, 60.0])
    lon = torch.tensor([0.0, 90.0, 180.0, 270.0])
    plev = torch.tensor([1e5, 1e4])
    f = forcing_maps(torch.tensor([2.0, 1.0]), torch.tensor([True, False]),
                     torch.tensor([5e4, 1e5]), plev, lat, lon, substellar_lon_deg=0.0)
    assert f.shape == (2, N_FORCING, 2, 3, 4)
    locked, rotating = f[0, 0, 0], f[1, 0, 0]
    assert float(locked[1, 0]) == pytest.approx(2.0)  # substellar point, 2 S_earth
    assert float(locked[:, 2].abs().max()) == 0.0  # antistellar meridian is dark
    torch.testing.assert_close(rotating, (torch.cos(torch.deg2rad(lat)) / math.pi)
                               .reshape(-1, 1).expand(3, 4))
    assert float(f[0, 5, 0, 0, 0]) == pytest.approx(math.log(2.0))  # p > ps: below ground
    # radiative-equilibrium temperature of the substellar point: ((1-A) 2 S0 / sigma)^(1/4)
    t_sub = (0.7 * 2.0 * S_EARTH / SIGMA_SB) ** 0.25
    assert float(f[0, 1, 0, 1, 0]) * 300.0 == pytest.approx(t_sub, rel=1e-5)
    assert float(f[0, 1, 0, 1, 2]) == 0.0


def test_inference_convolution_matches_the_autograd_path() -> None:
    net = SphereUNet3d(GRID, n_params=3, out_3d=2, out_2d=1, depth=2, base_features=4)
    forcing = torch.randn(1, N_FORCING, *GRID)
    params = torch.randn(1, 3)
    with torch.no_grad():
        fast3, fast2 = net(forcing, params)
    slow3, slow2 = net(forcing, params)  # gradients enabled: the standard convolution
    torch.testing.assert_close(fast3, slow3.detach(), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(fast2, slow2.detach(), atol=1e-5, rtol=1e-4)
