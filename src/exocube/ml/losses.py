"""Loss terms of the surrogate: the data misfit and three physics residuals.

All physics terms take fields in physical units (SI), shaped
``(batch, plev, lat, lon)`` with pressure levels surface first, and a boolean
``valid`` mask of the same shape (``False`` below ground). Each returns a
non-negative scalar that is zero exactly when the constraint holds:

hydrostatic
    Between adjacent valid levels ``k`` (lower) and ``k+1`` (upper) the
    geopotential-height difference must equal the hypsometric thickness
    ``(R / g) * 0.5 (Tv_k + Tv_k+1) * ln(p_k / p_k+1)`` with ``Tv`` the
    virtual temperature and ``R`` the run's gas constant (the store's
    ``r_gas_j_kg_k``; dry air when absent). The residual is relative to that thickness; the loss
    is its mean square.
humidity
    ``0 <= hus <= q_sat(ta, p)``. The violation ``max(-hus, 0) + max(hus - q_sat, 0)``
    is divided by a per-level humidity scale (the store's standard deviation)
    and squared.
mass continuity
    For a time-mean state the column-integrated mass flux is non-divergent:
    ``div( sum_k v_k dp_k / g ) = 0`` with ``dp_k`` the pressure thickness of
    level ``k`` (interfaces at the geometric mean of neighbouring levels, the
    bottom interface at the lowest level, the top at 0 Pa; below-ground levels
    contribute nothing). The spherical divergence uses centred differences,
    periodic in longitude. The residual is made dimensionless by ``a g / (U P)``
    with ``U = 10 m/s`` and ``P = 1e5 Pa``, so it does not depend on the planet's
    radius ``a`` or gravity ``g``.
spread (a network with a std head)
    The Gaussian negative log-likelihood of the truth around the detached mean
    (:func:`gaussian_nll`), added unweighted.
data
    Mean squared error per channel in normalised units, weighted by
    ``cos(latitude)`` (area) and by the mask, so below-ground points count
    for nothing.

:class:`UncertaintyWeighting` combines terms with learnable homoscedastic
weights (Kendall, Gal and Cipolla 2018): ``sum_i 0.5 exp(-s_i) L_i + 0.5 s_i``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from exocube.grid import latitude_weights
from exocube.ml import thermo
from exocube.physics import BAR_TO_PA, R_DRY_AIR

U_REF = 10.0  # m s-1, wind scale of the mass-continuity residual
P_REF = BAR_TO_PA  # 1 bar, pressure scale of the mass-continuity residual


def _masked_mean(x: Tensor, valid: Tensor, weight: Tensor | None = None) -> Tensor:
    w = valid.to(x.dtype) if weight is None else valid.to(x.dtype) * weight
    return (x * w).sum() / w.sum().clamp_min(1.0e-12)


def hydrostatic_residual(ta: Tensor, hus: Tensor, zg: Tensor, plev: Tensor, gravity: Tensor,
                         valid: Tensor, r_gas: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Relative hypsometric residual per layer ``(B, L-1, H, W)`` and its validity mask.

    ``r_gas`` ``(B,)`` is each atmosphere's specific gas constant (default: dry air).
    """
    tv = thermo.virtual_temperature(ta, hus)
    g = gravity.reshape(-1, 1, 1, 1)
    p = plev.reshape(1, -1, 1, 1)
    r = R_DRY_AIR if r_gas is None else r_gas.reshape(-1, 1, 1, 1)
    thick = thermo.layer_thickness(tv[:, :-1], tv[:, 1:], p[:, :-1], p[:, 1:], g, r)
    dz = zg[:, 1:] - zg[:, :-1]
    layer_valid = valid[:, :-1] & valid[:, 1:]
    safe_thick = torch.where(layer_valid, thick, torch.ones_like(thick))
    resid = torch.where(layer_valid, (dz - thick) / safe_thick, torch.zeros_like(thick))
    return resid, layer_valid


def hydrostatic_loss(ta: Tensor, hus: Tensor, zg: Tensor, plev: Tensor, gravity: Tensor,
                     valid: Tensor, r_gas: Tensor | None = None) -> Tensor:
    """Mean squared relative hydrostatic residual over valid layers."""
    resid, layer_valid = hydrostatic_residual(ta, hus, zg, plev, gravity, valid, r_gas)
    return _masked_mean(resid.square(), layer_valid)


def humidity_violation(hus: Tensor, ta: Tensor, plev: Tensor) -> Tensor:
    """How far ``hus`` is outside ``[0, q_sat(ta, p)]`` [kg/kg], per point."""
    qs = thermo.q_sat(ta, plev.reshape(1, -1, 1, 1).to(ta.dtype))
    return torch.relu(-hus) + torch.relu(hus - qs)


def humidity_loss(hus: Tensor, ta: Tensor, plev: Tensor, valid: Tensor,
                  scale: Tensor) -> Tensor:
    """Mean squared humidity violation in units of the per-level ``scale`` ``(L,)``."""
    v = humidity_violation(hus, torch.where(valid, ta, torch.full_like(ta, 250.0)), plev)
    v = v / scale.reshape(1, -1, 1, 1).clamp_min(1.0e-12)
    return _masked_mean(v.square(), valid)


def level_pressure_thickness(plev: Tensor) -> Tensor:
    """Pressure thickness [Pa] of each level, ``(L,)``, for descending ``plev``."""
    mids = torch.sqrt(plev[:-1] * plev[1:])
    upper = torch.cat([mids, plev.new_zeros(1)])
    lower = torch.cat([plev[:1], mids])
    return lower - upper


def column_mass_divergence(ua: Tensor, va: Tensor, valid: Tensor, plev: Tensor, lat_deg: Tensor,
                           radius: Tensor, gravity: Tensor) -> Tensor:
    """Column mass flux divergence ``div(sum_k v_k dp_k / g)`` [kg m-2 s-1], ``(B, H, W)``."""
    dp = level_pressure_thickness(plev).reshape(1, -1, 1, 1).to(ua.dtype)
    m = valid.to(ua.dtype)
    g = gravity.reshape(-1, 1, 1)
    big_u = (torch.where(valid, ua, torch.zeros_like(ua)) * dp * m).sum(1) / g
    big_v = (torch.where(valid, va, torch.zeros_like(va)) * dp * m).sum(1) / g
    phi = lat_deg.to(ua.dtype) * (math.pi / 180.0)
    cos_phi = torch.cos(phi).reshape(1, -1, 1)
    nlon = ua.shape[-1]
    dlam = 2.0 * math.pi / nlon
    du_dlam = (torch.roll(big_u, -1, dims=-1) - torch.roll(big_u, 1, dims=-1)) / (2.0 * dlam)
    dphi = float(phi[1] - phi[0])
    dvc_dphi = torch.gradient(big_v * cos_phi, spacing=dphi, dim=-2)[0]
    a = radius.reshape(-1, 1, 1)
    return (du_dlam + dvc_dphi) / (a * cos_phi)


def mass_continuity_residual(ua: Tensor, va: Tensor, valid: Tensor, plev: Tensor,
                             lat_deg: Tensor) -> Tensor:
    """Dimensionless column mass divergence ``(B, H, W)`` (independent of radius and gravity)."""
    one = ua.new_ones(ua.shape[0])
    return column_mass_divergence(ua, va, valid, plev, lat_deg, one, one) / (U_REF * P_REF)


def mass_continuity_loss(ua: Tensor, va: Tensor, valid: Tensor, plev: Tensor,
                         lat_deg: Tensor) -> Tensor:
    """Area-weighted mean square of the dimensionless column mass divergence."""
    r = mass_continuity_residual(ua, va, valid, plev, lat_deg)
    w = latitude_weights(lat_deg.to(ua.dtype)).reshape(1, -1, 1)
    return (r.square() * w).mean()


def weighted_mse(pred: Tensor, target: Tensor, valid: Tensor, lat_deg: Tensor) -> Tensor:
    """Area-weighted, mask-aware MSE per channel ``(C,)``; lat is the second-to-last axis.

    ``pred``, ``target`` and ``valid`` are ``(B, C, ..., lat, lon)``; masked
    points may hold any finite value in ``target``.
    """
    shape = [1] * pred.ndim
    shape[-2] = -1
    w = latitude_weights(lat_deg.to(pred.dtype)).reshape(shape) * valid.to(pred.dtype)
    err = torch.where(valid, pred - target, torch.zeros_like(pred)).square() * w
    dims = [0, *range(2, pred.ndim)]
    return err.sum(dims) / w.sum(dims).clamp_min(1.0e-12)


def gaussian_nll(mean: Tensor, log_std: Tensor, target: Tensor, valid: Tensor,
                 lat_deg: Tensor) -> Tensor:
    """Area-weighted, mask-aware Gaussian negative log-likelihood per channel ``(C,)``:
    ``0.5 ((y - mu) / sigma)**2 + ln sigma`` (without the constant ``0.5 ln 2 pi``), with
    ``sigma = exp(log_std)``; shapes as :func:`weighted_mse`."""
    shape = [1] * mean.ndim
    shape[-2] = -1
    w = latitude_weights(lat_deg.to(mean.dtype)).reshape(shape) * valid.to(mean.dtype)
    z = torch.where(valid, (target - mean) * torch.exp(-log_std), torch.zeros_like(mean))
    nll = (0.5 * z.square() + torch.where(valid, log_std, torch.zeros_like(log_std))) * w
    dims = [0, *range(2, mean.ndim)]
    return nll.sum(dims) / w.sum(dims).clamp_min(1.0e-12)


class UncertaintyWeighting(nn.Module):
    """Learnable homoscedastic weights: ``sum_i 0.5 exp(-s_i) L_i + 0.5 s_i``.

    ``max_ratio`` caps chosen terms relative to a ``reference`` term: term ``i``
    uses ``max(s_i, s_ref - ln r_i)``, so its weight never exceeds ``r_i`` times
    the reference's. Without a cap a residual that the network can drive towards
    zero (hydrostatic balance between two predicted fields, say) earns an ever
    larger weight and pulls the fit away from the data.
    """

    def __init__(self, names: list[str], reference: str | None = None,
                 max_ratio: dict[str, float] | None = None) -> None:
        super().__init__()
        self.names = list(names)
        self.max_ratio = dict(max_ratio or {})
        unknown = sorted(set(self.max_ratio) - set(self.names))
        if unknown or (self.max_ratio and reference not in self.names):
            raise ValueError(f"capped terms {unknown} or reference {reference!r} are not among "
                             f"the weighted terms {self.names}")
        if any(r <= 0 for r in self.max_ratio.values()):
            raise ValueError(f"weight ratios must be positive, got {self.max_ratio}")
        self.reference = reference
        self.log_vars = nn.Parameter(torch.zeros(len(self.names)))

    def effective_log_vars(self) -> Tensor:
        """The log variances after the caps, ``(len(names),)``."""
        s = self.log_vars
        if not self.max_ratio:
            return s
        s_ref = s[self.names.index(str(self.reference))]
        floors = [s_ref - math.log(self.max_ratio[n]) if n in self.max_ratio else None
                  for n in self.names]
        return torch.stack([s[i] if f is None else torch.maximum(s[i], f)
                            for i, f in enumerate(floors)])

    def forward(self, terms: dict[str, Tensor]) -> Tensor:
        if set(terms) != set(self.names):
            raise ValueError(f"loss terms {sorted(terms)} do not match the weighted terms "
                             f"{sorted(self.names)}")
        s = self.effective_log_vars()
        total = self.log_vars.new_zeros(())
        for i, name in enumerate(self.names):
            total = total + 0.5 * torch.exp(-s[i]) * terms[name] + 0.5 * s[i]
        return total

    def weights(self) -> dict[str, float]:
        """The current effective weight ``0.5 exp(-s_i)`` of each term."""
        s = self.effective_log_vars().detach()
        return {n: float(0.5 * torch.exp(-v)) for n, v in zip(self.names, s, strict=True)}
