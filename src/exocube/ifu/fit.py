"""Bayesian fits of a forward model to a cube: priors -> numpyro model -> NUTS blocks
committed to the catalogue -> the convergence gate.

:func:`prepare` reads the cube, builds the forward model, the likelihood
(:mod:`exocube.ifu.likelihood`) and the numpyro model of one hypothesis;
:func:`start` creates the fit and runs the warm-up; :func:`advance` continues it
from its last committed state (:func:`exocube.ifu.chains.run_fit`) for a number of
draws or until the gate holds or a budget ends. :func:`problem_for_fit` rebuilds
the problem of a stored fit from its provenance (resume), refusing another cube.
A fit that fails the gate is reported as not converged; its numbers are not a
result (:meth:`exocube.ifu.chains.ChainStore.result`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from exocube.ifu._jax import jax, jnp
from exocube.ifu.chains import ChainStore, FitMismatchError, Provenance, run_fit, start_fit
from exocube.ifu.cube import IFUCube, read_s3d
from exocube.ifu.forward import ForwardModel
from exocube.ifu.gate import GateConfig, GateReport
from exocube.ifu.instrument import GaussianPSF, ResolvingPower
from exocube.ifu.likelihood import (
    GaussianLikelihood,
    build_likelihood,
    check_lines_covered,
    error_inflation,
    fitted_channels,
)
from exocube.ifu.lines import get_lines, lines_in_band
from exocube.ifu.priors import Prior, fix_unused_lines, priors_for, priors_json
from exocube.ifu.sampling import Block, BlockSampler, SamplerConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitSettings:
    """Everything besides priors and sampler that defines a fit (stored in provenance)."""

    model: str
    z: float = 0.964
    lines: tuple[str, ...] | None = None  # None: every model line in the band
    continuum_degree: int = 1
    error_inflation: float | str = 1.0  # a factor >= 1, or "auto" (estimated)
    psf_fwhm: float = 0.15  # arcsec at 1.2893 um; 0: none
    resolving_power: float = 1000.0  # at 1.2893 um
    window_kms: float | None = None
    continuum_sd: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lines"] = None if self.lines is None else list(self.lines)
        return d


@dataclass(eq=False)
class FitProblem:
    """One cube, one hypothesis: forward model, likelihood, priors and the numpyro model."""

    cube: IFUCube
    settings: FitSettings
    forward: ForwardModel
    likelihood: GaussianLikelihood
    priors: dict[str, Prior]
    resolved: dict[str, Any] = field(default_factory=dict)
    _sampler: BlockSampler | None = field(default=None, repr=False)

    @property
    def free(self) -> list[str]:
        return [n for n, p in self.priors.items() if not p.fixed]

    def values(self, draw: Mapping[str, Any]) -> dict[str, jnp.ndarray]:
        """Forward-model parameters from the free values in ``draw`` and the fixed priors."""
        out = {n: jnp.asarray(p.args[0], jnp.float32) for n, p in self.priors.items() if p.fixed}
        out.update({n: jnp.asarray(draw[n], jnp.float32) for n in self.free})
        return out

    def model(self, data) -> None:
        """The numpyro model: priors on the free parameters, the cube's log-likelihood."""
        import numpyro

        draw = {n: numpyro.sample(n, self.priors[n].distribution()) for n in self.free}
        cube = self.forward._cube(self.values(draw))
        numpyro.factor("loglik", self.likelihood.log_likelihood(cube, data))

    def sampler(self, config: SamplerConfig) -> BlockSampler:
        """This problem's sampler for ``config`` (kept, so its block compiles once)."""
        if self._sampler is None or self._sampler.config != config:
            self._sampler = BlockSampler(self.model, (self.likelihood.data,), config=config)
        return self._sampler

    def provenance(self, seed: int) -> Provenance:
        return Provenance(self.cube.sha256, self.settings.model, priors_json(self.priors),
                          seed, settings={**self.settings.to_dict(), **self.resolved})

    def pointwise(self, draws: Mapping[str, np.ndarray], chunk: int = 64) -> np.ndarray:
        """log L_s for every draw: (chain, draw, S), recomputed from the stored draws."""
        n_chain, n_draw = next(iter(draws.values())).shape[:2]
        flat = {n: np.asarray(draws[n], np.float32).reshape(-1) for n in self.free}
        data = self.likelihood.data

        def one(d):
            return self.likelihood.pointwise(self.forward._cube(self.values(d)), data)

        batch = jax.jit(jax.vmap(one))
        total = n_chain * n_draw
        out = [np.asarray(batch({n: v[i:i + chunk] for n, v in flat.items()}))
               for i in range(0, total, chunk)]
        return np.concatenate(out).reshape(n_chain, n_draw, -1)

    def model_cube(self, draw: Mapping[str, Any]) -> np.ndarray:
        return np.asarray(self.forward.cube(self.values(draw)))


def fit_lines(cube: IFUCube, settings: FitSettings):
    """The lines to fit: those named (each must be on the cube) or all model lines in band."""
    if settings.lines:
        lines = get_lines(settings.lines)
        check_lines_covered(cube, lines, settings.z)
        return lines
    band = [ln for ln in lines_in_band(cube.wavelength_um, settings.z) if ln.name != "Hbeta"]
    if not band:
        check_lines_covered(cube, [ln for ln in get_lines() if ln.name != "Hbeta"], settings.z)
    return band


def prepare(cube: IFUCube | str | Path, settings: FitSettings,
            priors: dict[str, Prior] | None = None) -> FitProblem:
    """The fit problem of ``settings.model`` on ``cube`` (a path or a read cube)."""
    if not isinstance(cube, IFUCube):
        cube = read_s3d(cube)
    lines = fit_lines(cube, settings)
    psf = GaussianPSF(fwhm_arcsec=settings.psf_fwhm) if settings.psf_fwhm > 0 else None
    fm = ForwardModel.build(settings.model, cube, settings.z, psf=psf, lines=lines,
                            resolving_power=ResolvingPower.linear(settings.resolving_power),
                            window_kms=settings.window_kms)
    priors = fix_unused_lines(dict(priors or priors_for(settings.model)), fm.line_names)
    fm.params({n: p.centre() for n, p in priors.items()})  # the window holds the centre
    inflation = settings.error_inflation
    resolved: dict[str, Any] = {}
    if inflation == "auto":
        inflation = error_inflation(cube, fitted_channels(fm))
        resolved["error_inflation_estimated"] = inflation
    like = build_likelihood(cube, fm, degree=settings.continuum_degree,
                            inflation=float(inflation), continuum_sd=settings.continuum_sd)
    resolved.update(like.settings())
    return FitProblem(cube, settings, fm, like, priors, resolved)


def start(store: ChainStore, problem: FitProblem, config: SamplerConfig,
          on_created: Callable[[str], None] | None = None) -> str:
    """Create the fit and commit its warm-up; the fit id (``on_created`` gets it first)."""
    return start_fit(store, problem.sampler(config), problem.provenance(config.seed),
                     on_created)


def advance(store: ChainStore, problem: FitProblem, fit_id: str, *, draws: int | None = None,
            until_converged: bool = False, max_draws: int = 10_000,
            max_seconds: float | None = None, gate: GateConfig | None = None,
            on_block: Callable[[int, Block], None] | None = None) -> GateReport | None:
    """Continue ``fit_id``: to ``draws`` per chain, or until the gate holds or a budget ends."""
    config = SamplerConfig(**dict(store.fit(fit_id).sampler))
    sampler = problem.sampler(config)
    if until_converged:
        return run_fit(store, sampler, fit_id, gate=gate, max_draws=max_draws,
                       max_seconds=max_seconds, provenance=problem.provenance(config.seed),
                       on_block=on_block)
    n_blocks = -(-int(draws or config.block_size) // config.block_size)
    return run_fit(store, sampler, fit_id, n_blocks=n_blocks, gate=gate,
                   provenance=problem.provenance(config.seed), on_block=on_block)


def problem_for_fit(store: ChainStore, fit_id: str, cube: IFUCube | str | Path) -> FitProblem:
    """The problem of a stored fit, rebuilt from its provenance, on the same cube."""
    row = store.fit(fit_id)
    prov = dict(row.provenance)
    if not isinstance(cube, IFUCube):
        cube = read_s3d(cube)
    if cube.sha256 != prov["data_sha256"]:
        raise FitMismatchError(
            f"fit {fit_id} was made on a cube with sha256 {prov['data_sha256']}, not "
            f"{cube.sha256} ({cube.source}): resume it on the same file")
    stored = dict(prov.get("settings") or {})
    keys = set(FitSettings.__dataclass_fields__)
    kw = {k: v for k, v in stored.items() if k in keys}
    if kw.get("lines") is not None:
        kw["lines"] = tuple(kw["lines"])
    settings = FitSettings(**kw)
    priors = priors_for(settings.model, prov["priors"])
    return prepare(cube, settings, priors)



def posterior_summary(draws: Mapping[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Mean, sd and the 5, 50 and 95 % quantiles of each parameter (pooled chains)."""
    out = {}
    for name, x in draws.items():
        x = np.asarray(x, np.float64).ravel()
        q05, q50, q95 = np.percentile(x, [5, 50, 95])
        out[name] = {"mean": float(x.mean()), "sd": float(x.std(ddof=1)), "q05": float(q05),
                     "q50": float(q50), "q95": float(q95)}
    return out


def median_draw(draws: Mapping[str, np.ndarray]) -> dict[str, float]:
    return {k: float(np.median(v)) for k, v in draws.items()}


def data_and_model(problem: FitProblem, draw: Mapping[str, float]
                   ) -> tuple[IFUCube, IFUCube, np.ndarray]:
    """(data minus the conditional continuum, the model cube, rms residual / err per spaxel)
    at ``draw``; outside the fitted channels the data are left as they are."""
    like, cube = problem.likelihood, problem.cube
    model = problem.forward.cube(problem.values(draw))
    cont = np.asarray(like.continuum(model, like.data), np.float64)
    model = np.asarray(model, np.float64)
    flux = np.array(cube.flux, np.float64)
    ch, iy, ix = like.channels, like.spaxel_iy, like.spaxel_ix
    flux[ch[:, None], iy[None], ix[None]] -= cont
    w = np.asarray(like.data.w, np.float64)
    resid = np.asarray(like.data.y, np.float64) - cont - like.model_voxels(model)
    n = np.maximum((w > 0).sum(axis=0), 1)
    chi = np.full(cube.shape[1:], np.nan)
    chi[iy, ix] = np.sqrt((w * np.asarray(resid) ** 2).sum(axis=0) / n)
    return (cube.with_data(flux, dq=cube.dq), cube.with_data(model, dq=cube.dq), chi)


def loo_compare(fits: Mapping[str, tuple[ChainStore, FitProblem, str]]) -> dict[str, Any]:
    """PSIS-LOO of converged fits of the same cube (arviz ``compare``), per spaxel.

    Each fit must pass the gate (``ChainStore.result`` raises otherwise); the
    pointwise log-likelihood is recomputed from the stored draws.
    """
    from exocube.ifu.gate import import_arviz

    az = import_arviz()
    shas = {problem.cube.sha256 for _, problem, _ in fits.values()}
    if len(shas) != 1:
        raise FitMismatchError(f"the fits compared were made on different cubes {sorted(shas)}")
    idatas = {}
    for name, (store, problem, fit_id) in fits.items():
        res = store.result(fit_id)
        loglik = problem.pointwise({k: res.draws[k] for k in problem.free})
        idatas[name] = store.to_inference_data(fit_id, log_likelihood={"cube": loglik})
    table = az.compare(idatas, ic="loo")
    out = {"ranking": [], "fit_ids": {n: f for n, (_, _, f) in fits.items()}}
    for name, row in table.iterrows():
        loo = az.loo(idatas[name], pointwise=True)
        out["ranking"].append({
            "model": name, "elpd_loo": float(row["elpd_loo"]), "se": float(row["se"]),
            "p_loo": float(row["p_loo"]), "elpd_diff": float(row["elpd_diff"]),
            "dse": float(row["dse"]), "warning": bool(row["warning"]),
            "pareto_k_max": float(np.max(loo.pareto_k.values)),
            "n_points": int(loo.pareto_k.size)})
    return out
