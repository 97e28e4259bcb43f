"""The convergence gate: a fit reports numbers only when its chains have converged.

Diagnostics come from arviz at full precision (never the rounded ``az.summary``):
rank-normalised split R-hat (Vehtari et al. 2021) and the bulk and tail effective
sample sizes of every scalar parameter. A fit passes when every parameter has
R-hat below ``GateConfig.max_rhat`` and both ESS at or above their minimum, with at
least ``min_chains`` chains and no more divergent transitions than allowed.

:func:`require_converged` raises :class:`NotConvergedError` (carrying every number)
for a fit that fails; a caller who wants to look at unconverged numbers asks
:func:`diagnose` for the report, as emcee's ``AutocorrError`` makes a caller opt in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from exocube.errors import ExocubeError


@dataclass(frozen=True)
class GateConfig:
    """Thresholds of the gate (defaults: Vehtari et al. 2021, a referee's minimum)."""

    max_rhat: float = 1.01
    min_ess_bulk: float = 400.0
    min_ess_tail: float = 400.0
    min_chains: int = 4
    max_divergences: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_rhat) and self.max_rhat > 1.0):
            raise GateConfigError(f"max_rhat={self.max_rhat!r}: expected a finite value > 1")
        for name in ("min_ess_bulk", "min_ess_tail"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise GateConfigError(f"{name}={value!r}: expected a finite value > 0")
        if self.min_chains < 2:
            raise GateConfigError(
                f"min_chains={self.min_chains!r}: split R-hat needs at least 2 chains"
            )
        if self.max_divergences < 0:
            raise GateConfigError(f"max_divergences={self.max_divergences!r}: expected >= 0")


@dataclass(frozen=True)
class ParameterDiagnostics:
    """The gate's numbers for one scalar parameter (``name`` like ``beta[1]``)."""

    name: str
    rhat: float
    ess_bulk: float
    ess_tail: float

    def failures(self, config: GateConfig) -> list[str]:
        """What this parameter fails, in words (empty when it passes)."""
        out = []
        if not (math.isfinite(self.rhat) and self.rhat < config.max_rhat):
            out.append(f"{self.name}: R-hat {self.rhat:.5f} (needs < {config.max_rhat})")
        if not (math.isfinite(self.ess_bulk) and self.ess_bulk >= config.min_ess_bulk):
            out.append(
                f"{self.name}: bulk ESS {self.ess_bulk:.1f} (needs >= {config.min_ess_bulk})"
            )
        if not (math.isfinite(self.ess_tail) and self.ess_tail >= config.min_ess_tail):
            out.append(
                f"{self.name}: tail ESS {self.ess_tail:.1f} (needs >= {config.min_ess_tail})"
            )
        return out


@dataclass(frozen=True)
class GateReport:
    """Every parameter's diagnostics, the chain shape and the verdict."""

    parameters: tuple[ParameterDiagnostics, ...]
    n_chains: int
    n_draws: int
    divergences: int
    config: GateConfig

    def failures(self) -> list[str]:
        """Every reason the gate is not passed (empty when it is)."""
        out = []
        if self.n_chains < self.config.min_chains:
            out.append(f"{self.n_chains} chains (needs >= {self.config.min_chains})")
        if self.divergences > self.config.max_divergences:
            out.append(
                f"{self.divergences} divergent transitions "
                f"(allowed {self.config.max_divergences})"
            )
        for p in self.parameters:
            out.extend(p.failures(self.config))
        return out

    @property
    def passed(self) -> bool:
        return not self.failures()

    def to_dict(self) -> dict:
        """A JSON-ready form (stored with the fit in the catalogue)."""
        return {
            "passed": self.passed,
            "n_chains": self.n_chains,
            "n_draws": self.n_draws,
            "divergences": self.divergences,
            "config": {k: getattr(self.config, k) for k in self.config.__dataclass_fields__},
            "parameters": [
                {"name": p.name, "rhat": _json_float(p.rhat), "ess_bulk": _json_float(p.ess_bulk),
                 "ess_tail": _json_float(p.ess_tail)}
                for p in self.parameters
            ],
        }

    def table(self) -> str:
        """A plain-text table of every parameter's numbers."""
        lines = [f"{'parameter':<24} {'R-hat':>10} {'ESS bulk':>10} {'ESS tail':>10}"]
        for p in self.parameters:
            lines.append(f"{p.name:<24} {p.rhat:>10.5f} {p.ess_bulk:>10.1f} {p.ess_tail:>10.1f}")
        return "\n".join(lines)


class GateConfigError(ExocubeError, ValueError):
    """A gate threshold is not a usable number."""


class NotConvergedError(ExocubeError):
    """A fit failed the convergence gate; ``report`` holds its numbers (not a result)."""

    def __init__(self, report: GateReport, context: str = "") -> None:
        self.report = report
        head = f"{context}: " if context else ""
        super().__init__(
            f"{head}not converged after {report.n_draws} draws x {report.n_chains} chains: "
            + "; ".join(report.failures())
            + ". Continue sampling (--until-converged / --resume) or reparameterise."
        )


def diagnose(
    samples: Mapping[str, np.ndarray], config: GateConfig | None = None, divergences: int = 0
) -> GateReport:
    """The gate's report for ``samples``: site name -> array (chain, draw, *shape)."""
    az = import_arviz()
    config = config or GateConfig()
    if not samples:
        raise GateConfigError("no parameters to diagnose: the samples mapping is empty")
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in samples.items()}
    shapes = {v.shape[:2] for v in arrays.values()}
    if len(shapes) != 1 or any(v.ndim < 2 for v in arrays.values()):
        raise GateConfigError(f"samples must share (chain, draw) leading axes; got {shapes}")
    n_chains, n_draws = shapes.pop()
    if n_draws < 4:
        raise GateConfigError(f"{n_draws} draws per chain: split R-hat needs at least 4")
    data = az.convert_to_dataset(arrays)
    with np.errstate(invalid="ignore", divide="ignore"):  # constant draws give NaN: a failure
        rhat = az.rhat(data, method="rank")
        bulk = az.ess(data, method="bulk")
        tail = az.ess(data, method="tail")
    params = tuple(
        ParameterDiagnostics(name, r, b, t)
        for name, r, b, t in _scalars(arrays, rhat, bulk, tail)
    )
    return GateReport(params, n_chains, n_draws, int(divergences), config)


def require_converged(
    samples: Mapping[str, np.ndarray],
    config: GateConfig | None = None,
    divergences: int = 0,
    context: str = "",
) -> GateReport:
    """The passing report for ``samples``; raises :class:`NotConvergedError` otherwise."""
    report = diagnose(samples, config, divergences)
    if not report.passed:
        raise NotConvergedError(report, context)
    return report


def import_arviz():
    """arviz, without its import-time notice about the 1.0 refactor."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz

    return arviz


def _scalars(arrays, rhat, bulk, tail):
    """(name, rhat, ess_bulk, ess_tail) for each scalar component of each site."""
    for name, arr in arrays.items():
        r = np.atleast_1d(rhat[name].values)
        b = np.atleast_1d(bulk[name].values)
        t = np.atleast_1d(tail[name].values)
        shape = arr.shape[2:]
        for flat, idx in enumerate(np.ndindex(*shape) if shape else [()]):
            label = name + ("[" + ",".join(map(str, idx)) + "]" if idx else "")
            yield label, float(r.ravel()[flat]), float(b.ravel()[flat]), float(t.ravel()[flat])


def _json_float(x: float) -> float | None:
    return x if math.isfinite(x) else None
