"""Where NUTS chains start: the best of many local optima of the posterior, with Laplace
scatter, and a report of every distinct optimum found.

Started from random points of the prior (numpyro's default), chains of a multimodal
posterior settle in different modes and the R-hat gate refuses the fit, although one
mode may hold nearly all of the posterior mass. :func:`optimum_starts` instead

1. draws ``n_starts`` points from numpyro's default initialisation (uniform in (-2, 2) in
   the unconstrained space of every parameter, each a valid point of the model);
2. minimises the potential energy (minus the log posterior, in unconstrained space) from
   each with L-BFGS (optax, all starts in one vectorised call), then polishes the
   ``POLISHED`` lowest end points with damped Newton steps (L-BFGS creeps along the narrow
   valleys of an ill-conditioned posterior: on a 12-parameter bow shock, Hessian
   eigenvalues 0.25 to 8e6, its best start still had a gradient norm of 80 after 500
   iterations, and two of its "optima" were one);
3. groups the end points into distinct optima (within ``MODE_TOL`` in every unconstrained
   coordinate) and reports each one's potential and how many starts reached it, so a
   secondary mode is visible in the fit's record rather than silently left out;
4. starts every chain at a draw from the Laplace approximation at the best optimum:
   N(z*, H^-1) in unconstrained space, with the Hessian's eigenvalues floored at 1 (a
   flat or non-convex direction gets a unit spread, the scale of the default
   initialisation; a floor of 0.1, closer to the curvature of a parameter that only its
   bounded prior constrains, gave NUTS with this matrix kept a lower ESS: docs/ifu.md);
5. hands NUTS that covariance (its diagonal, or all of it for a dense mass matrix) as the
   initial inverse mass matrix, so the warm-up starts at the posterior's scales instead of
   numpyro's unit matrix (whose first window otherwise costs deep trees at a tiny step
   size when the scales differ by orders of magnitude).

Chains that start in one mode test convergence within it; the reported optima say whether
other modes exist and how much lower their posterior density is (``delta`` in nats).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from exocube.ifu._jax import jax, jnp

MODE_TOL = 0.05  # unconstrained units: optima closer than this in every coordinate are one
EIGEN_FLOOR = 1.0  # Hessian eigenvalues below this give the Laplace scatter a unit spread
GRAD_TOL = 1e-2  # nats per unconstrained unit: an optimisation stops below this gradient norm
POLISHED = 4  # the lowest L-BFGS end points polished by Newton steps
NEWTON_STEPS = 50  # at most, per polished point


@dataclass(frozen=True)
class Optimum:
    """One distinct local optimum: its potential energy, its gap to the best one (nats) and
    the number of starts that ended there."""

    potential: float
    delta: float
    starts: int
    position: dict[str, list[float]]


@dataclass(frozen=True)
class OptimumStart:
    """Unconstrained initial values (leading axis: chain), the Laplace covariance at the
    best optimum (the order of ``sites``: numpyro's sorted site names) and the report."""

    init: dict[str, jnp.ndarray]
    covariance: np.ndarray
    sites: tuple[str, ...]
    report: StartReport

    def inverse_mass_matrix(self, dense: bool) -> dict[tuple[str, ...], jnp.ndarray]:
        """The covariance as numpyro's structured initial inverse mass matrix."""
        value = self.covariance if dense else np.diag(self.covariance)
        return {self.sites: jnp.asarray(value, jnp.float32)}


@dataclass(frozen=True)
class StartReport:
    """What the multi-start optimisation found (best optimum first)."""

    n_starts: int
    optima: tuple[Optimum, ...]
    failed_starts: int

    def to_dict(self) -> dict[str, Any]:
        return {"n_starts": self.n_starts, "failed_starts": self.failed_starts,
                "optima": [vars(o) for o in self.optima]}


def optimum_starts(model: Callable[..., Any], model_args: tuple, model_kwargs: Mapping[str, Any],
                   num_chains: int, seed: int, n_starts: int = 16,
                   maxiter: int = 500) -> OptimumStart:
    """Chains' starts, the Laplace covariance and the report of the optimisation."""
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import initialize_model

    key_starts, key_scatter = jax.random.split(jax.random.PRNGKey(seed))
    # dynamic_args: the data are arguments of the compiled programs, not constants in them,
    # so cubes of one shape share the programs (and JAX's persistent compilation cache)
    info = initialize_model(jax.random.split(key_starts, n_starts), model,
                            model_args=model_args, model_kwargs=dict(model_kwargs),
                            dynamic_args=True)
    starts = info.param_info.z
    _, unravel = ravel_pytree(jax.tree_util.tree_map(lambda v: v[0], starts))
    flat_starts = jax.vmap(lambda z: ravel_pytree(z)[0])(starts)
    potential_at = info.potential_fn

    def potential(x, args, kwargs):
        return potential_at(*args, **kwargs)(unravel(x))

    data = (tuple(model_args), dict(model_kwargs))
    ends, values = _minimise(potential, flat_starts, data, maxiter)
    for i in [i for i in np.argsort(values) if np.isfinite(values[i])][:POLISHED]:
        ends[i], values[i] = _polish(potential, ends[i], values[i], data)
    report, best = _group(ends, values, unravel, n_starts)
    cov = laplace_covariance(potential, best, *data)
    scatter = _laplace_scatter(cov, best, num_chains, key_scatter)
    sites = tuple(sorted(starts))  # ravel_pytree's order of a dict, and numpyro's
    return OptimumStart(jax.vmap(unravel)(scatter), cov, sites, report)


def _minimise(potential: Callable[..., Any], x0: jnp.ndarray, data: tuple[Any, ...],
              maxiter: int) -> tuple[np.ndarray, np.ndarray]:
    """L-BFGS from every row of ``x0`` on ``potential(x, *data)``, in one compiled call;
    each run stops when its gradient norm is below ``GRAD_TOL`` or after ``maxiter``
    iterations.

    optax's L-BFGS scales its first step by the gradient and searches with zoom; started
    from prior points, where the potential is 1e6 to 1e7 nats and the gradient as large,
    ``jax.scipy.optimize.minimize``'s BFGS (a unit first step) failed its line search
    within a few iterations on every start of a 12-parameter bow shock, far from any
    optimum (measured: docs/inference.md)."""
    import optax

    def one(x, data):
        def f(y):
            return potential(y, *data)

        opt = optax.lbfgs()
        value_and_grad = optax.value_and_grad_from_state(f)

        def going(carry):
            _, _, i, gnorm = carry
            return (i < maxiter) & (gnorm > GRAD_TOL)

        def step(carry):
            y, state, i, _ = carry
            value, grad = value_and_grad(y, state=state)
            updates, state = opt.update(grad, state, y, value=value, grad=grad, value_fn=f)
            return optax.apply_updates(y, updates), state, i + 1, jnp.linalg.norm(grad)

        end, _, _, _ = jax.lax.while_loop(going, step, (x, opt.init(x), 0, jnp.inf))
        return end, f(end)

    ends, values = jax.jit(jax.vmap(one, in_axes=(0, None)))(x0, data)
    return np.array(ends, np.float64), np.array(values, np.float64)  # writable copies


@functools.lru_cache(maxsize=4)
def _compiled(potential: Callable[..., Any]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The potential's jit-compiled value-and-gradient and Hessian (compiled once per
    potential: the polish and the Laplace covariance share them)."""
    return jax.jit(jax.value_and_grad(potential)), jax.jit(jax.hessian(potential))


def _polish(potential: Callable[..., Any], x: np.ndarray, value: float,
            data: tuple[Any, ...]) -> tuple[np.ndarray, float]:
    """Damped Newton steps from ``x`` (Levenberg-Marquardt on the Hessian's absolute
    eigenvalues): a step is kept only if it lowers the potential, and the damping grows
    until one does; at most ``NEWTON_STEPS`` steps, ending at a gradient norm below
    ``GRAD_TOL`` or where no step lowers the potential (float32 rounding)."""
    value_and_grad, hessian = _compiled(potential)
    x = np.asarray(x, np.float64)
    grad = np.asarray(value_and_grad(jnp.asarray(x, jnp.float32), *data)[1], np.float64)
    damping = 1e-3
    for _ in range(NEWTON_STEPS):
        if not np.isfinite(value) or np.linalg.norm(grad) < GRAD_TOL:
            break
        h = np.asarray(hessian(jnp.asarray(x, jnp.float32), *data), np.float64)
        lam, vec = np.linalg.eigh(0.5 * (h + h.T))
        while damping < 1e10:
            trial = x - (vec / (np.abs(lam) + damping)) @ (vec.T @ grad)
            v, g = value_and_grad(jnp.asarray(trial, jnp.float32), *data)
            if float(v) < value:
                x, value, grad = trial, float(v), np.asarray(g, np.float64)
                damping = max(damping / 3.0, 1e-9)
                break
            damping *= 4.0
        else:
            break
    return x, value


def _group(ends: np.ndarray, values: np.ndarray, unravel: Callable[[Any], Any],
           n_starts: int) -> tuple[StartReport, np.ndarray]:
    ok = np.isfinite(values) & np.all(np.isfinite(ends), axis=1)
    if not ok.any():
        raise FloatingPointError(
            f"all {n_starts} optimisations of the posterior ended at a non-finite potential")
    order = [i for i in np.argsort(values) if ok[i]]
    groups: list[list[int]] = []
    for i in order:
        for g in groups:
            if np.max(np.abs(ends[i] - ends[g[0]])) < MODE_TOL:
                g.append(i)
                break
        else:
            groups.append([i])
    best = values[groups[0][0]]
    optima = tuple(
        Optimum(potential=float(values[g[0]]), delta=float(values[g[0]] - best), starts=len(g),
                position={k: np.asarray(v).reshape(-1).tolist()
                          for k, v in unravel(jnp.asarray(ends[g[0]])).items()})
        for g in groups)
    return StartReport(n_starts, optima, int(np.sum(~ok))), ends[groups[0][0]]


def laplace_covariance(potential: Callable[..., Any], x: np.ndarray, *data: Any
                       ) -> np.ndarray:
    """H^-1 of ``potential(x, *data)`` in ``x``, with the Hessian's eigenvalues floored at
    ``EIGEN_FLOOR``."""
    hess = np.asarray(_compiled(potential)[1](jnp.asarray(x, jnp.float32), *data), np.float64)
    lam, vec = np.linalg.eigh(0.5 * (hess + hess.T))
    return (vec / np.maximum(lam, EIGEN_FLOOR)) @ vec.T


def _laplace_scatter(cov: np.ndarray, x: np.ndarray, num_chains: int,
                     key: Any) -> jnp.ndarray:
    chol = np.linalg.cholesky(cov)
    eps = np.asarray(jax.random.normal(key, (num_chains, len(x))), np.float64)
    return jnp.asarray(x[None, :] + eps @ chol.T, jnp.float32)
