"""Bayesian evidence by nested sampling, and the Bayes factor of two hypotheses.

The sampler is blackjax's nested slice sampling (``blackjax.nss``: Yallup, Kroupa and
Handley 2026; hit-and-run slice moves shaped by the live points' covariance), in JAX
like the fits. The target is the fit's own: the same likelihood
(:mod:`exocube.ifu.likelihood`, continuum marginalised) and the same priors
(:mod:`exocube.ifu.priors`), the free parameters mapped from the unit hypercube by
each prior's inverse CDF (:func:`unit_transform`), so the sampler's prior is uniform
on [0, 1]^d and the evidence is the one of the priors NUTS samples.

A run starts ``num_live`` points uniform in the cube, then repeatedly replaces the
``num_delete`` lowest-likelihood ones by points drawn inside the current contour
(``num_inner_steps`` slice moves each, from survivors), until the live points could
add less than ``dlogz`` to ln Z: ln(Z + Z_live) - ln Z < dlogz, with Z_live the mean
live likelihood times the remaining prior volume. The dead points and the final live
points then give ln Z: each of ``volume_samples`` simulated sequences of prior-volume
shrinkages (Skilling 2006; the number of live points at each death from
:func:`blackjax.ns.utils.compute_num_live`) gives one ln Z, and their mean and
standard deviation are the estimate and its error. The error is the statistical one
of nested sampling (it assumes each new point is an independent draw inside the
contour); :attr:`Evidence.information` (the prior-to-posterior KL divergence H, nats)
sets its size, about sqrt(H / num_live).

A run that reaches ``max_iterations`` before ``dlogz`` raises
:class:`EvidenceNotConvergedError` with its numbers; they are not a result.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
from scipy.special import logsumexp, ndtr

from exocube.errors import ExocubeError
from exocube.ifu._jax import jax, jnp
from exocube.ifu.fit import FitProblem
from exocube.ifu.priors import Prior

log = logging.getLogger(__name__)

LogLikelihood = Callable[[Mapping[str, jnp.ndarray], Any], jnp.ndarray]


class NestedConfigError(ExocubeError, ValueError):
    """A nested-sampling setting is out of range."""


class EvidenceNotConvergedError(ExocubeError):
    """Nested sampling stopped on its budget before the live points' share of Z fell
    below ``dlogz``; ``evidence`` holds the numbers so far (not a result)."""

    def __init__(self, evidence: Evidence) -> None:
        self.evidence = evidence
        super().__init__(
            f"nested sampling stopped after {evidence.iterations} iterations "
            f"(max_iterations) with ln(Z + Z_live) - ln Z = {evidence.remaining_dlogz:.3g} "
            f"> dlogz = {evidence.config.dlogz}: ln Z = {evidence.log_z:.3f} is not a result."
            " Raise --evidence-max-iterations, or more live points shrink faster per "
            "iteration with a larger --evidence-delete")


@dataclass(frozen=True)
class NestedConfig:
    """Nested-sampling settings: live points, deletions per iteration, inner slice
    moves (``None``: max(5, 2 d), blackjax's advice), stopping and the seed."""

    num_live: int = 500
    num_delete: int = 50
    num_inner_steps: int | None = None
    dlogz: float = 0.01
    max_iterations: int = 20_000
    chunk: int = 20  # iterations per compiled call (progress and the stopping check)
    volume_samples: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        if self.num_live < 10:
            raise NestedConfigError(f"num_live={self.num_live}: expected >= 10")
        if not 1 <= self.num_delete <= self.num_live // 2:
            raise NestedConfigError(
                f"num_delete={self.num_delete}: expected 1..num_live/2 ({self.num_live // 2})")
        if self.num_inner_steps is not None and self.num_inner_steps < 1:
            raise NestedConfigError(f"num_inner_steps={self.num_inner_steps}: expected >= 1")
        if not (math.isfinite(self.dlogz) and self.dlogz > 0):
            raise NestedConfigError(f"dlogz={self.dlogz}: expected a positive number")
        if self.max_iterations < 1 or self.chunk < 1 or self.volume_samples < 10:
            raise NestedConfigError(
                f"max_iterations={self.max_iterations}, chunk={self.chunk}, volume_samples="
                f"{self.volume_samples}: expected >= 1, >= 1 and >= 10")

    def inner_steps(self, dim: int) -> int:
        return self.num_inner_steps or max(5, 2 * dim)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Evidence:
    """ln Z of one model with its error, and what the run cost."""

    log_z: float
    log_z_err: float
    information: float  # KL(posterior || prior), nats
    posterior_ess: float  # Kish effective size of the weighted dead points
    remaining_dlogz: float  # ln(Z + Z_live) - ln Z when the run stopped
    iterations: int
    n_dead: int
    slice_evaluations: int  # likelihood evaluations of the slice moves (expansions + shrinks)
    seconds: float  # wall time of the run (compilation included)
    first_call_seconds: float  # initialisation and the first chunk: mostly compilation
    cpu_seconds: float  # CPU time of this process during the run (all threads)
    free: tuple[str, ...]
    config: NestedConfig
    converged: bool
    posterior_mean: dict[str, float] = field(default_factory=dict)
    posterior_sd: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["free"] = list(self.free)
        out["config"] = self.config.to_dict()
        return out


def unit_transform(prior: Prior, u: jnp.ndarray) -> jnp.ndarray:
    """The prior's inverse CDF at u in [0, 1]: the value whose prior mass below is u.

    Matches :meth:`Prior.distribution` (numpyro's ``Uniform``, ``LogUniform`` and
    ``TruncatedNormal`` truncated to the parameter's range).
    """
    a = float(prior.args[0])
    if prior.kind == "uniform":
        return a + (float(prior.args[1]) - a) * u
    if prior.kind == "loguniform":
        la, lb = math.log(a), math.log(float(prior.args[1]))
        return jnp.exp(la + (lb - la) * u)
    if prior.kind == "normal":
        sd = float(prior.args[1])
        lo = float(ndtr((prior.spec.low - a) / sd))
        hi = float(ndtr((prior.spec.high - a) / sd))
        p = jnp.clip(lo + (hi - lo) * u, 1e-7, 1.0 - 1e-7)
        return jnp.clip(a + sd * jax.scipy.special.ndtri(p), prior.spec.low, prior.spec.high)
    raise NestedConfigError(f"prior {prior.name} is {prior.kind!r}: only free priors map "
                            "from the unit cube")


@dataclass(frozen=True)
class _Target:
    """What the compiled sampler depends on besides its arrays (hashable: a static
    argument, so runs of the same likelihood and settings share one compilation)."""

    loglike: LogLikelihood
    priors: tuple[Prior, ...]  # the free ones, in order
    num_live: int
    num_delete: int
    num_inner_steps: int
    chunk: int

    def values(self, u: jnp.ndarray) -> dict[str, jnp.ndarray]:
        uc = jnp.clip(u, 0.0, 1.0)
        return {p.name: unit_transform(p, uc[i]) for i, p in enumerate(self.priors)}

    def algorithm(self, data: Any):
        import blackjax

        def logprior(u):
            return jnp.where(jnp.all((u >= 0.0) & (u <= 1.0)), 0.0, -jnp.inf)

        return blackjax.nss(logprior_fn=logprior,
                            loglikelihood_fn=lambda u: self.loglike(self.values(u), data),
                            num_inner_steps=self.num_inner_steps, num_delete=self.num_delete)


@partial(jax.jit, static_argnames="target")
def _initial(key: jnp.ndarray, data: Any, target: _Target):
    k_pos, k_init = jax.random.split(key)
    u = jax.random.uniform(k_pos, (target.num_live, len(target.priors)))
    return target.algorithm(data).init(u, k_init)


@partial(jax.jit, static_argnames="target")
def _chunk(state: Any, key: jnp.ndarray, data: Any, target: _Target):
    """``target.chunk`` iterations: the state, the dead points and the slice evaluations."""
    step = target.algorithm(data).step

    def one(s, k):
        s, info = step(k, s)
        upd = info.update_info  # SliceInfo (num_delete, num_inner_steps)
        return s, (info.particles, jnp.sum(upd.num_expansions + upd.num_shrink))

    return jax.lax.scan(one, state, jax.random.split(key, target.chunk))


@partial(jax.jit, static_argnames="target")
def _values(u: jnp.ndarray, target: _Target) -> dict[str, jnp.ndarray]:
    return jax.vmap(target.values)(u)


def log_evidence(loglike: LogLikelihood, priors: Mapping[str, Prior], data: Any = None,
                 config: NestedConfig | None = None,
                 on_chunk: Callable[[int, float], None] | None = None) -> Evidence:
    """ln Z of ``loglike(values, data)`` under the free ``priors`` (module docstring).

    ``loglike`` maps a dict of the free parameters' values (scalars) and ``data`` (a
    pytree of arrays, passed to the compiled sampler as an argument) to ln L; it must
    be traceable by JAX (jit, vmap). ``on_chunk(iterations, remaining_dlogz)`` is
    called after each compiled chunk of iterations.
    """
    config = config or NestedConfig()
    free = tuple(p for p in priors.values() if not p.fixed)
    if not free:
        raise NestedConfigError("every prior is fixed: there is nothing to integrate over")
    target = _Target(loglike, free, config.num_live, config.num_delete,
                     config.inner_steps(len(free)), config.chunk)
    t0, c0 = time.perf_counter(), time.process_time()
    key_init, key_run = jax.random.split(jax.random.PRNGKey(config.seed))
    state = _initial(key_init, data, target)
    dead, evals, iterations = [], 0, 0
    while True:
        key_run, key = jax.random.split(key_run)
        state, (particles, n_eval) = _chunk(state, key, data, target)
        dead.append(jax.tree.map(lambda x: np.asarray(x).reshape(-1, *x.shape[2:]),
                                 particles))
        evals += int(np.sum(n_eval))
        iterations += config.chunk
        if iterations == config.chunk:
            first_call = time.perf_counter() - t0
        remaining = float(np.logaddexp(state.integrator.logZ, state.integrator.logZ_live)
                          - state.integrator.logZ)
        if on_chunk is not None:
            on_chunk(iterations, remaining)
        if remaining < config.dlogz or iterations >= config.max_iterations:
            break
    out = _summarise(dead, state.particles, target, config)
    evidence = Evidence(**out, remaining_dlogz=remaining, iterations=iterations,
                        slice_evaluations=evals, seconds=time.perf_counter() - t0,
                        first_call_seconds=first_call, cpu_seconds=time.process_time() - c0,
                        free=tuple(p.name for p in free), config=config,
                        converged=remaining < config.dlogz)
    log.info("ln Z = %.3f +- %.3f (H %.1f nats, %d dead points, %d iterations, %.1f s, "
             "of which %.1f s the first call)", evidence.log_z, evidence.log_z_err,
             evidence.information, evidence.n_dead, iterations, evidence.seconds, first_call)
    if not evidence.converged:
        raise EvidenceNotConvergedError(evidence)
    return evidence


def _summarise(dead: list, live: Any, target: _Target, config: NestedConfig
               ) -> dict[str, Any]:
    """ln Z, its error, H, the ESS and the posterior mean from the dead and live points."""
    parts = [*dead, jax.tree.map(np.asarray, live)]
    pts = jax.tree.map(lambda *xs: np.concatenate(xs), *parts)
    order = np.argsort(pts.loglikelihood, kind="stable")
    pts = jax.tree.map(lambda x: x[order], pts)
    ll = np.asarray(pts.loglikelihood, np.float64)
    rng = np.random.default_rng([config.seed, 16])
    log_dx = _log_volume_elements(live_counts(ll, np.asarray(pts.loglikelihood_birth)),
                                  config.volume_samples, rng)  # (n, samples)
    log_zs = logsumexp(log_dx + ll[:, None], axis=0)
    log_w = logsumexp(log_dx, axis=1) - math.log(config.volume_samples) + ll
    log_z = float(logsumexp(log_w))
    w = np.exp(log_w - log_z)
    info = float(np.sum(w[w > 0] * (ll[w > 0] - log_z)))
    theta = _values(jnp.asarray(pts.position), target)
    theta = {n: np.asarray(v, np.float64) for n, v in theta.items()}
    mean = {n: float(np.sum(w * v)) for n, v in theta.items()}
    sd = {n: float(np.sqrt(np.sum(w * (v - mean[n]) ** 2))) for n, v in theta.items()}
    return {"log_z": float(np.mean(log_zs)), "log_z_err": float(np.std(log_zs, ddof=1)),
            "information": info, "posterior_ess": float(1.0 / np.sum(w * w)),
            "n_dead": int(ll.size), "posterior_mean": mean, "posterior_sd": sd}


def live_counts(death: np.ndarray, birth: np.ndarray) -> np.ndarray:
    """The number of live points when each point died (``death`` sorted ascending):
    those born below its contour (NaN birth: the initial points) less those dead
    before it."""
    births = np.sort(np.where(np.isnan(birth), -np.inf, birth))
    return (np.searchsorted(births, death, side="left") - np.arange(death.size)).astype(
        np.float64)


def _log_volume_elements(num_live: np.ndarray, samples: int,
                         rng: np.random.Generator) -> np.ndarray:
    """ln dX_i per point (sorted by ln L) for ``samples`` simulated shrinkage sequences:
    X_i = X_{i-1} t_i, t_i ~ Beta(n_i, 1), dX_i = (X_{i-1} - X_{i+1}) / 2."""
    log_t = np.log1p(-rng.uniform(size=(num_live.size, samples))) / num_live[:, None]
    log_x = np.cumsum(log_t, axis=0)
    prev = np.vstack([np.zeros((1, samples)), log_x[:-1]])
    nxt = np.vstack([log_x[1:], np.full((1, samples), -np.inf)])
    with np.errstate(divide="ignore"):
        return prev + np.log1p(-np.exp(nxt - prev)) - math.log(2.0)


def problem_evidence(problem: FitProblem, config: NestedConfig | None = None,
                     on_chunk: Callable[[int, float], None] | None = None) -> Evidence:
    """ln Z of a fit problem: its likelihood (continuum marginalised) under its priors."""
    like, fm = problem.likelihood, problem.forward

    def loglike(free_values, data):
        return like.log_likelihood(fm._cube(problem.values(free_values)), data)

    config = config or NestedConfig()
    ev = log_evidence(loglike, problem.priors, like.data, config, on_chunk)
    return replace(ev, provenance=problem.provenance(config.seed).to_dict())


def bayes_factor(evidence: Mapping[str, Evidence], numerator: str = "bowshock",
                 denominator: str = "disk") -> dict[str, Any]:
    """ln B = ln Z(numerator) - ln Z(denominator), its error (independent runs, errors in
    quadrature) and each model's evidence; both runs must be of the same cube."""
    from exocube.ifu.chains import FitMismatchError

    num, den = evidence[numerator], evidence[denominator]
    shas = {e.provenance.get("data_sha256") for e in (num, den)}
    if len(shas) != 1:
        raise FitMismatchError(f"the evidences compared were computed on different cubes "
                               f"{sorted(map(str, shas))}")
    ln_b = num.log_z - den.log_z
    err = math.hypot(num.log_z_err, den.log_z_err)
    return {"numerator": numerator, "denominator": denominator, "ln_B": ln_b,
            "ln_B_err": err, "log10_B": ln_b / math.log(10.0),
            "models": {n: e.to_dict() for n, e in evidence.items()}}
