"""A 3-D U-Net on the sphere, conditioned on the planet and star parameters.

Input volumes are ``(batch, channel, plev, lat, lon)`` on a regular grid with
latitudes ascending and longitudes in [0, 360). Every 3x3x3 convolution is
preceded by :class:`SpherePad3d`, which pads

- longitude periodically (0 and 360 degrees are neighbours),
- latitude across the poles: the row beyond a pole is the row next to it,
  shifted by 180 degrees in longitude (the great circle through the pole),
- pressure by replicating the top and bottom levels (plain padding).

The parameter vector conditions every block through FiLM (a per-channel scale
and shift), and the input volume holds forcing maps computed from the
parameters (see :func:`forcing_maps`): the top-of-atmosphere insolation
pattern (substellar-centred for tidally locked planets, the diurnal mean
``S cos(lat) / pi`` otherwise), the local radiative-equilibrium temperature
of that insolation, ``cos`` and ``sin`` of latitude, log pressure and log
pressure relative to the planet's surface pressure.

Two paths beside the convolutions carry what group normalisation would
otherwise wash out (it removes each sample's own mean and scale):

- a **profile head**, an MLP from the parameters to one value per output
  variable and level (and per 2-D output), broadcast over the sphere and
  added to the output: the run-to-run change of the mean profile;
- a **pointwise head**: the last feature volume is concatenated with the raw
  forcing maps and passed through a FiLM-conditioned 1x1x1 MLP, so the
  output can depend sharply on the local insolation and the height above
  the surface.

Pooling halves a dimension only while it is even and at least 4, so any grid
works (20 levels: 20 -> 10 -> 5 -> 5); the decoder interpolates to the skip
connection's size by nearest-neighbour repetition (exact for the factors of 2, and
it keeps the seam periodic, unlike linear interpolation, which clamps at the
edges). The 2-D outputs (``ps``, ``ts``) come from a 1x1
convolution over all levels of the last feature volume.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from exocube.errors import ConfigError
from exocube.physics import BAR_TO_PA, S_EARTH, SIGMA_SB
from exocube.planet import BOND_ALBEDO, SUBSTELLAR_LON_DEG

N_FORCING = 6
T_REF_K = 300.0  # scale of the equilibrium-temperature map


class SpherePad3d(nn.Module):
    """Pad ``(B, C, L, H, W)`` by ``pad`` on each side: periodic lon, pole fold in lat."""

    def __init__(self, pad: int = 1, periodic_lon: bool = True, pole_fold: bool = True) -> None:
        super().__init__()
        self.pad = pad
        self.periodic_lon = periodic_lon
        self.pole_fold = pole_fold

    def forward(self, x: Tensor) -> Tensor:
        p = self.pad
        if self.pole_fold:
            half = x.shape[-1] // 2
            south = torch.roll(x[..., :p, :].flip(-2), half, dims=-1)
            north = torch.roll(x[..., -p:, :].flip(-2), half, dims=-1)
            x = torch.cat([south, x, north], dim=-2)
        else:
            x = F.pad(x, (0, 0, p, p, 0, 0), mode="replicate")
        x = F.pad(x, (0, 0, 0, 0, p, p), mode="replicate")
        return F.pad(x, (p, p, 0, 0, 0, 0), mode="circular" if self.periodic_lon else "replicate")


class FiLM(nn.Module):
    """Feature-wise linear modulation: ``x * (1 + gamma(c)) + beta(c)``."""

    def __init__(self, cond_dim: int, features: int) -> None:
        super().__init__()
        self.proj = nn.Linear(cond_dim, 2 * features)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        gamma, beta = self.proj(cond).chunk(2, dim=-1)
        shape = (*gamma.shape, 1, 1, 1)
        return x * (1.0 + gamma.reshape(shape)) + beta.reshape(shape)


class Conv3d(nn.Conv3d):
    """``nn.Conv3d`` that calls oneDNN directly for CPU inference.

    For small batches PyTorch's CPU dispatcher picks a slow direct 3-D
    convolution (about 3x slower for one datacube); without gradients the
    oneDNN kernel gives the same result (to float32 round-off) faster. Under
    ``torch.vmap`` over stacked members (:mod:`exocube.ml.stacked`) the plain
    convolution runs: its batching rule makes one grouped convolution of all
    members, which PyTorch gives to oneDNN itself (``aten::mkldnn_convolution`` has
    no batching rule).
    """

    def forward(self, x: Tensor) -> Tensor:
        if (x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_grad_enabled()
                and torch.backends.mkldnn.is_available() and not _batched(x, self.weight)):
            return torch.mkldnn_convolution(x.contiguous(), self.weight, self.bias, self.padding,
                                            self.stride, self.dilation, self.groups)
        return super().forward(x)


def _batched(*tensors: Tensor) -> bool:
    """True when any of ``tensors`` carries a ``torch.vmap`` batch dimension."""
    return any(torch._C._functorch.is_batchedtensor(t) for t in tensors)


class ConvBlock(nn.Module):
    """Two (sphere pad, 3x3x3 conv, group norm, FiLM, GELU) layers."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, periodic_lon: bool,
                 pole_fold: bool) -> None:
        super().__init__()
        self.pad = SpherePad3d(1, periodic_lon, pole_fold)
        self.convs = nn.ModuleList([Conv3d(c_in, c_out, 3), Conv3d(c_out, c_out, 3)])
        groups = math.gcd(c_out, 8)
        self.norms = nn.ModuleList([nn.GroupNorm(groups, c_out), nn.GroupNorm(groups, c_out)])
        self.films = nn.ModuleList([FiLM(cond_dim, c_out), FiLM(cond_dim, c_out)])

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        for conv, norm, film in zip(self.convs, self.norms, self.films, strict=True):
            x = F.gelu(film(norm(conv(self.pad(x))), cond))
        return x


def pool_factors(shape: tuple[int, int, int], depth: int) -> list[tuple[int, int, int]]:
    """Per-level pooling factors: halve a dimension while it is even and >= 4."""
    factors = []
    size = list(shape)
    for _ in range(depth):
        f = tuple(2 if (s % 2 == 0 and s >= 4) else 1 for s in size)
        size = [s // k for s, k in zip(size, f, strict=True)]
        factors.append(f)
    return factors


class SphereUNet3d(nn.Module):
    """3-D U-Net mapping forcing maps + FiLM-conditioned parameters to 3-D and 2-D fields."""

    def __init__(self, grid_shape: tuple[int, int, int], n_params: int, out_3d: int,
                 out_2d: int, depth: int = 3, base_features: int = 16,
                 periodic_lon: bool = True, pole_fold: bool = True) -> None:
        super().__init__()
        if depth < 1 or base_features < 1:
            raise ConfigError(f"depth and base_features must be >= 1, got depth={depth}, "
                              f"base_features={base_features}")
        if pole_fold and grid_shape[2] % 2:
            raise ConfigError(f"pole folding needs an even number of longitudes, got "
                              f"{grid_shape[2]}; use an even nlon or pole_fold=False")
        self.grid_shape = tuple(grid_shape)
        self.n_params = n_params
        self.out_3d, self.out_2d = out_3d, out_2d
        self.factors = pool_factors(self.grid_shape, depth)
        widths = [base_features * 2**i for i in range(depth + 1)]
        cond = 4 * base_features
        self.cond_net = nn.Sequential(nn.Linear(n_params, cond), nn.GELU(), nn.Linear(cond, cond))
        geo = (periodic_lon, pole_fold)
        self.down = nn.ModuleList()
        c_prev = N_FORCING
        for w in widths[:-1]:
            self.down.append(ConvBlock(c_prev, w, cond, *geo))
            c_prev = w
        self.bottom = ConvBlock(c_prev, widths[-1], cond, *geo)
        self.up = nn.ModuleList(
            ConvBlock(widths[i + 1] + widths[i], widths[i], cond, *geo)
            for i in reversed(range(depth))
        )
        w0 = widths[0]
        self.point_in = nn.Conv3d(w0 + N_FORCING, 2 * w0, 1)
        self.point_film = FiLM(cond, 2 * w0)
        self.head_3d = nn.Conv3d(2 * w0, out_3d, 1)
        self.head_2d = nn.Conv2d(2 * w0 * grid_shape[0], out_2d, 1) if out_2d else None
        n_levels = grid_shape[0]
        self.profile = nn.Sequential(nn.Linear(n_params, 4 * cond), nn.GELU(),
                                     nn.Linear(4 * cond, out_3d * n_levels + out_2d))

    def forward(self, forcing: Tensor, params: Tensor) -> tuple[Tensor, Tensor | None]:
        """``forcing`` ``(B, N_FORCING, L, H, W)``, ``params`` ``(B, n_params)`` ->
        ``(B, out_3d, L, H, W)`` and ``(B, out_2d, H, W)`` (or ``None``)."""
        if forcing.ndim != 5 or tuple(forcing.shape[1:]) != (N_FORCING, *self.grid_shape):
            want = ", ".join(map(str, (N_FORCING, *self.grid_shape)))
            raise ValueError(f"forcing must be (B, {want}), got {tuple(forcing.shape)}")
        if params.shape != (forcing.shape[0], self.n_params):
            raise ValueError(f"params must be ({forcing.shape[0]}, {self.n_params}), "
                             f"got {tuple(params.shape)}")
        cond = self.cond_net(params)
        skips = []
        x = forcing
        for block, f in zip(self.down, self.factors, strict=True):
            x = block(x, cond)
            skips.append(x)
            x = F.avg_pool3d(x, f, f) if f != (1, 1, 1) else x
        x = self.bottom(x, cond)
        for block, skip in zip(self.up, reversed(skips), strict=True):
            x = F.interpolate(x, size=skip.shape[2:], mode="nearest")
            x = block(torch.cat([x, skip], dim=1), cond)
        x = F.gelu(self.point_film(self.point_in(torch.cat([x, forcing], dim=1)), cond))
        b, c, lev, h, w = x.shape
        prof = self.profile(params)
        out3 = self.head_3d(x) + prof[:, :self.out_3d * lev].reshape(b, self.out_3d, lev, 1, 1)
        out2 = None
        if self.head_2d is not None:
            out2 = (self.head_2d(x.reshape(b, c * lev, h, w))
                    + prof[:, self.out_3d * lev:].reshape(b, self.out_2d, 1, 1))
        return out3, out2


def forcing_maps(insolation: Tensor, tidally_locked: Tensor, ps: Tensor, plev: Tensor,
                 lat_deg: Tensor, lon_deg: Tensor,
                 substellar_lon_deg: float = SUBSTELLAR_LON_DEG) -> Tensor:
    """Forcing volume ``(B, N_FORCING, L, H, W)`` from per-run insolation [S_earth],
    tidal locking (bool), surface pressure [Pa], and the grid.

    Channels: insolation pattern [S_earth]; local radiative-equilibrium
    temperature ``((1 - A) S_local / sigma)^(1/4)`` with Bond albedo 0.3, in
    units of 300 K; cos and sin of latitude; ``ln(p / 1e5 Pa) / ln(1e3)``;
    ``ln(p / p_s)``."""
    b = insolation.shape[0]
    phi = (lat_deg * math.pi / 180.0).reshape(1, 1, -1, 1)
    lam = ((lon_deg - substellar_lon_deg) * math.pi / 180.0).reshape(1, 1, 1, -1)
    locked = torch.clamp(torch.cos(phi) * torch.cos(lam), min=0.0)
    rotating = (torch.cos(phi) / math.pi).expand_as(locked)
    sel = tidally_locked.reshape(-1, 1, 1, 1).bool()
    pattern = torch.where(sel, locked, rotating) * insolation.reshape(-1, 1, 1, 1)
    flux = (1.0 - BOND_ALBEDO) * S_EARTH * pattern
    t_loc = (flux / SIGMA_SB).clamp_min(0.0).pow(0.25) / T_REF_K
    shape = (b, 1, len(plev), len(lat_deg), len(lon_deg))
    logp = torch.log(plev / BAR_TO_PA).reshape(1, 1, -1, 1, 1) / math.log(1.0e3)
    logp_rel = torch.log(plev.reshape(1, -1, 1, 1) / ps.reshape(-1, 1, 1, 1)).unsqueeze(1)
    maps = [
        pattern.unsqueeze(2).expand(shape),
        t_loc.unsqueeze(2).expand(shape),
        torch.cos(phi).unsqueeze(1).expand(shape),
        torch.sin(phi).unsqueeze(1).expand(shape),
        logp.expand(shape),
        logp_rel.expand(shape),
    ]
    return torch.cat(maps, dim=1)
