"""Circular velocities of parametric potentials, in JAX (differentiable).

Miyamoto and Nagai (1975, PASJ 27, 533):
    Phi(R, z) = -G M / sqrt(R^2 + (a + sqrt(z^2 + b^2))^2),
    v_c^2(R) = R dPhi/dR at z = 0 = G M R^2 / (R^2 + (a + b)^2)^(3/2).

NFW (Navarro, Frenk and White 1996, ApJ 462, 563), in galpy's normalisation
(``NFWPotential(amp=M_s, a=r_s)``: rho = M_s / (4 pi r_s^3) / (x (1 + x)^2),
x = r / r_s):
    M(<r) = M_s [ln(1 + x) - x / (1 + x)],   v_c^2(r) = G M(<r) / r.
The halo is set by its own peak velocity v_max, reached at x = 2.16258:
M_s = v_max^2 r_s / (G g(2.16258)), g(x) = [ln(1 + x) - x / (1 + x)] / x.

Arctan curve (Courteau 1997, AJ 114, 2402): v(R) = (2 / pi) V_max arctan(R / R_t).

Units: kpc, km/s, Msun; G = 4.30091727e-6 kpc (km/s)^2 / Msun (CODATA 2018 G and
the IAU nominal solar mass parameter).
"""

from __future__ import annotations

import math

from exocube.ifu._jax import jnp

G_KPC_KMS2_MSUN = 4.30091727e-6
NFW_XMAX = 2.1625815870646098


def _nfw_g(x: float) -> float:
    return (math.log1p(x) - x / (1.0 + x)) / x


NFW_GMAX = _nfw_g(NFW_XMAX)


def vc_miyamoto_nagai(r_kpc: jnp.ndarray, mass_msun: jnp.ndarray, a_kpc: jnp.ndarray,
                      b_kpc: jnp.ndarray) -> jnp.ndarray:
    """Circular velocity (km/s) of a Miyamoto-Nagai disk in its plane."""
    r2 = r_kpc * r_kpc
    return jnp.sqrt(G_KPC_KMS2_MSUN * mass_msun * r2 / (r2 + (a_kpc + b_kpc) ** 2) ** 1.5)


def nfw_mass_scale(vmax_kms: jnp.ndarray, rs_kpc: jnp.ndarray) -> jnp.ndarray:
    """galpy's NFW amplitude M_s (Msun) for a halo of peak velocity ``vmax_kms``."""
    return vmax_kms**2 * rs_kpc / (G_KPC_KMS2_MSUN * NFW_GMAX)


def vc_nfw(r_kpc: jnp.ndarray, vmax_kms: jnp.ndarray, rs_kpc: jnp.ndarray) -> jnp.ndarray:
    """Circular velocity (km/s) of an NFW halo; finite (-> 0) at r = 0."""
    x = jnp.maximum(r_kpc / rs_kpc, 1e-6)
    g = (jnp.log1p(x) - x / (1.0 + x)) / x
    return vmax_kms * jnp.sqrt(g / NFW_GMAX)


def vc_mn_nfw(r_kpc: jnp.ndarray, mass_msun: jnp.ndarray, a_kpc: jnp.ndarray,
              b_kpc: jnp.ndarray, vmax_kms: jnp.ndarray, rs_kpc: jnp.ndarray) -> jnp.ndarray:
    """Circular velocity (km/s) of Miyamoto-Nagai disk plus NFW halo (added in quadrature)."""
    return jnp.sqrt(vc_miyamoto_nagai(r_kpc, mass_msun, a_kpc, b_kpc) ** 2
                    + vc_nfw(r_kpc, vmax_kms, rs_kpc) ** 2)


def vc_arctan(r_kpc: jnp.ndarray, vmax_kms: jnp.ndarray, r_turn_kpc: jnp.ndarray
              ) -> jnp.ndarray:
    """The arctan rotation curve (km/s)."""
    return (2.0 / jnp.pi) * vmax_kms * jnp.arctan(r_kpc / r_turn_kpc)
