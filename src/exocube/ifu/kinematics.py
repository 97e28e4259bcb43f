"""Sky fields of the two hypotheses: Halpha surface brightness and line-of-sight velocity.

Each function maps a parameter dict and sky offsets (arcsec, east ``x`` and
north ``y``) to ``(sb, v)`` of shape (C, ny, nx): C emitting components per
spaxel (1 for the bow shock, the line-of-sight quadrature nodes for the disk),
``sb`` in 1e-18 erg/s/cm^2/arcsec^2 and ``v`` in km/s relative to the
redshift. Position angles run from north through east.

Bow shock (after van Dokkum et al. 2023, ApJL 946, L50; 2025, arXiv:2512.04166).
The black hole moves at v_BH along PA, at angle i out of the sky plane. With
s the distance behind the tip along the wake (s < 0 ahead of it) and t the
offset across it, the ambient gas ahead is at rest (v_sys); behind a normal
shock of compression ratio r (Rankine-Hugoniot; r = 4 for a strong adiabatic
shock) gas moves in the CGM frame at the post-shock flow speed
u_2 = (1 - 1/r) v_BH along the motion, whose line-of-sight part is u_2 sin i.
Downstream the shocked gas mixes with the CGM (turbulent entrainment), so its
line-of-sight velocity relaxes from u_2 sin i to v_far with e-folding length L_v:

    v(s) = v_sys + S(s) [v_far + (u_2 sin i - v_far) exp(-max(s, 0) / L_v)],
    S(s) = [1 + tanh(s / w)] / 2,

w the (unresolved, kept finite for gradients) shock width. The velocity jump
across the tip is therefore u_2 sin i (for w much smaller than the spaxel and
L_v much larger). Halpha: a Gaussian knot at the tip plus a wake that starts
at the shock and fades along s:

    SB = SB_tip exp(-(s^2 + t^2) / 2 r_tip^2)
         + SB_wake S(s) exp(-max(s, 0) / L_f) exp(-t^2 / 2 w_wake^2).

Disk (the edge-on galaxy reading of Sanchez Almeida et al. 2023, A&A 673, L9).
A thick exponential disk, emissivity eps(R, Z) = exp(-R / h_R) sech^2(Z / z0),
rotating on circles at v_c(R) of the potential (:mod:`exocube.ifu.potential`),
inclined by i (90 edge-on) with its receding major axis at PA. A sky point
(xi along the major axis, eta across, in kpc at the cube's redshift) and the
depth l along the line of sight map to disk coordinates X = xi,
Y = eta cos i - l sin i, Z = eta sin i + l cos i; the line-of-sight velocity
is v_sys + v_c(R) (X / R) sin i. The column integral over l is done by
quadrature on l = s sinh(u), u uniform (nodes crowd the mid-plane, where the
emissivity peaks), and normalised so that the face-on central surface
brightness is SB_halpha: SB = SB_halpha / (2 z0) * integral eps dl.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from exocube.ifu._jax import jnp
from exocube.ifu.potential import vc_arctan, vc_mn_nfw

Fields = tuple[jnp.ndarray, jnp.ndarray]


def _rad(deg: jnp.ndarray) -> jnp.ndarray:
    return deg * (jnp.pi / 180.0)


def post_shock_speed(v_bh: jnp.ndarray, compression: jnp.ndarray) -> jnp.ndarray:
    """u_2 = (1 - 1/r) v_BH: the CGM-frame speed of gas behind a normal shock."""
    return (1.0 - 1.0 / compression) * v_bh


def tip_jump_kms(p: dict) -> jnp.ndarray:
    """The analytic line-of-sight velocity jump at the tip, u_2 sin i."""
    return post_shock_speed(p["v_bh"], p["compression"]) * jnp.sin(_rad(p["incl_deg"]))


def bowshock_fields(p: dict, x: jnp.ndarray, y: jnp.ndarray) -> Fields:
    pa = _rad(p["pa_deg"])
    dx, dy = x - p["x0"], y - p["y0"]
    s = -(dx * jnp.sin(pa) + dy * jnp.cos(pa))
    t = dx * jnp.cos(pa) - dy * jnp.sin(pa)
    behind = 0.5 * (1.0 + jnp.tanh(s / p["shock_width"]))
    down = jnp.maximum(s, 0.0)
    v_wake = p["v_far"] + (tip_jump_kms(p) - p["v_far"]) * jnp.exp(-down / p["wake_decline"])
    v = p["v_sys"] + behind * v_wake
    knot = p["sb_tip"] * jnp.exp(-(s * s + t * t) / (2.0 * p["r_tip"] ** 2))
    wake = (p["sb_wake"] * behind * jnp.exp(-down / p["wake_length"])
            * jnp.exp(-t * t / (2.0 * p["wake_width"] ** 2)))
    return (knot + wake)[None], v[None]


def los_nodes(n: int, span: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """Nodes u and trapezoid weights on [-asinh(span/0.25)...] for l = s sinh(u)."""
    u_max = float(np.arcsinh(span / 0.25))
    u = np.linspace(-u_max, u_max, n)
    w = np.full(n, u[1] - u[0])
    w[[0, -1]] *= 0.5
    return u, w


def _disk(p: dict, x: jnp.ndarray, y: jnp.ndarray, kpc_per_arcsec: float, n_los: int,
          vc: Callable[[jnp.ndarray], jnp.ndarray]) -> Fields:
    pa, inc = _rad(p["pa_deg"]), _rad(p["incl_deg"])
    dx, dy = x - p["x0"], y - p["y0"]
    xi = (dx * jnp.sin(pa) + dy * jnp.cos(pa)) * kpc_per_arcsec
    eta = (dx * jnp.cos(pa) - dy * jnp.sin(pa)) * kpc_per_arcsec
    u, w = los_nodes(n_los)
    # l = s sinh(u) with s = h_R / 4 spans +-6 h_R (+ the vertical extent when inclined).
    scale = 0.25 * (p["h_r"] + p["z0"])
    l_ = scale * jnp.sinh(jnp.asarray(u))[:, None, None]
    dl = scale * jnp.cosh(jnp.asarray(u))[:, None, None] * jnp.asarray(w)[:, None, None]
    big_y = eta * jnp.cos(inc) - l_ * jnp.sin(inc)
    big_z = eta * jnp.sin(inc) + l_ * jnp.cos(inc)
    r = jnp.sqrt(xi * xi + big_y * big_y + 1e-12)
    eps = jnp.exp(-r / p["h_r"]) / jnp.cosh(big_z / p["z0"]) ** 2
    sb = p["sb_halpha"] / (2.0 * p["z0"]) * eps * dl
    v = p["v_sys"] + vc(r) * (xi / r) * jnp.sin(inc)
    return sb, v


def disk_fields(p: dict, x: jnp.ndarray, y: jnp.ndarray, kpc_per_arcsec: float,
                n_los: int) -> Fields:
    def vc(r: jnp.ndarray) -> jnp.ndarray:
        return vc_mn_nfw(r, 10.0 ** p["log_m_disk"], p["a_disk"], p["b_disk"],
                         p["vmax_halo"], p["rs_halo"])

    return _disk(p, x, y, kpc_per_arcsec, n_los, vc)


def disk_arctan_fields(p: dict, x: jnp.ndarray, y: jnp.ndarray, kpc_per_arcsec: float,
                       n_los: int) -> Fields:
    return _disk(p, x, y, kpc_per_arcsec, n_los, lambda r: vc_arctan(r, p["vmax"],
                                                                   p["r_turn"]))
