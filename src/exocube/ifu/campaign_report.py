"""Tables and figures of a campaign's stored results.

Inject-recover (one record per task: truth, each model's fit, the LOO comparison):

- **coverage**: per truth model, parameter and S/N, the fraction of converged fits of
  the true model whose 90 % interval [q05, q95] holds the truth, with its binomial
  standard error sqrt(p (1 - p) / n); calibrated when 0.85 <= p <= 0.95;
- **bias**: (posterior median - truth) / posterior sd, its mean over the fits, the
  standard error of that mean, and its median;
- **preference**: of the tasks whose fits all converged, how often the true model has
  the larger PSIS-LOO ELPD (difference > 0) and how often by more than 2 standard
  errors of the difference.

- **second optima**: of the true model's converged fits started at the posterior optimum
  (``--start optimum``), how many found another optimum within ``SECOND_OPTIMUM_NATS``
  of the best one: posterior mass the chains, all started at the best, may not visit.

Fits that did not pass the gate are counted in their own column (``not converged``)
and enter no fraction. Jackknife: per model and parameter, the full cube's posterior
median and sd, and the delete-one-group jackknife standard error of the median,
sqrt((K - 1) / K sum_k (m_k - mean m)^2), with its ratio to the posterior sd.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure

CALIBRATED = (0.85, 0.95)
SECOND_OPTIMUM_NATS = 3.0  # an optimum this close to the best holds a few % of its density or more


@dataclass(frozen=True)
class CoverageRow:
    truth_model: str
    parameter: str
    snr: float
    n: int  # converged fits of the true model
    inside: int
    not_converged: int

    @property
    def coverage(self) -> float:
        return self.inside / self.n if self.n else math.nan

    @property
    def se(self) -> float:
        p = self.coverage
        return math.sqrt(p * (1 - p) / self.n) if self.n else math.nan

    @property
    def calibrated(self) -> bool:
        return self.n > 0 and CALIBRATED[0] <= self.coverage <= CALIBRATED[1]


@dataclass(frozen=True)
class BiasRow:
    truth_model: str
    parameter: str
    snr: float
    n: int
    mean: float  # of (median - truth) / sd
    se: float
    median: float
    not_converged: int


@dataclass(frozen=True)
class PreferenceRow:
    truth_model: str
    snr: float
    compared: int
    preferred: int  # ELPD(true) - ELPD(other) > 0
    preferred_2se: int  # ... > 2 se of the difference
    not_compared: int  # some fit not converged

    @property
    def fraction(self) -> float:
        return self.preferred / self.compared if self.compared else math.nan

    @property
    def fraction_2se(self) -> float:
        return self.preferred_2se / self.compared if self.compared else math.nan


@dataclass(frozen=True)
class JackknifeRow:
    model: str
    parameter: str
    full_median: float
    full_sd: float
    groups: int  # leave-one-out subsets with a converged fit
    jackknife_se: float
    not_converged: int

    @property
    def ratio(self) -> float:
        return self.jackknife_se / self.full_sd if self.full_sd > 0 else math.nan


@dataclass(frozen=True)
class OptimaRow:
    truth_model: str
    snr: float
    started: int  # converged fits of the true model started at the optimum
    second_optimum: int  # of those, with another optimum within SECOND_OPTIMUM_NATS
    closest_nats: float  # the smallest gap to a second optimum among them (nan: none)


def optima_table(records: Iterable[Mapping[str, Any]]) -> list[OptimaRow]:
    rows = []
    for (model, snr), group in _groups(records).items():
        gaps = [_second_gap(_true_fit(r)) for r in group if _true_fit(r)["converged"]
                and _true_fit(r).get("start")]
        close = [g for g in gaps if g <= SECOND_OPTIMUM_NATS]
        rows.append(OptimaRow(model, snr, len(gaps), len(close),
                              min(gaps) if gaps else math.nan))
    return rows


def _second_gap(fit: Mapping[str, Any]) -> float:
    optima = fit["start"]["optima"]
    return float(optima[1]["delta"]) if len(optima) > 1 else math.inf


def _true_fit(record: Mapping[str, Any]) -> Mapping[str, Any]:
    return record["fits"][record["truth_model"]]


def _groups(records: Iterable[Mapping[str, Any]]) -> dict[tuple[str, float], list]:
    out: dict[tuple[str, float], list] = defaultdict(list)
    for r in records:
        out[(r["truth_model"], float(r["snr"]))].append(r)
    return dict(sorted(out.items()))


def _parameters(group: Sequence[Mapping[str, Any]]) -> list[str]:
    names: list[str] = []
    for r in group:
        for n in r["free"][r["truth_model"]]:
            if n not in names:
                names.append(n)
    return names


def coverage_table(records: Iterable[Mapping[str, Any]]) -> list[CoverageRow]:
    rows = []
    for (model, snr), group in _groups(records).items():
        ok = [r for r in group if _true_fit(r)["converged"]]
        for name in _parameters(group):
            inside = sum(_true_fit(r)["posterior"][name]["q05"] <= r["truth"][name]
                         <= _true_fit(r)["posterior"][name]["q95"] for r in ok)
            rows.append(CoverageRow(model, name, snr, len(ok), int(inside),
                                    len(group) - len(ok)))
    return rows


def bias_table(records: Iterable[Mapping[str, Any]]) -> list[BiasRow]:
    rows = []
    for (model, snr), group in _groups(records).items():
        ok = [r for r in group if _true_fit(r)["converged"]]
        for name in _parameters(group):
            z = np.array([(_true_fit(r)["posterior"][name]["q50"] - r["truth"][name])
                          / _true_fit(r)["posterior"][name]["sd"] for r in ok], float)
            n = z.size
            rows.append(BiasRow(
                model, name, snr, n, float(z.mean()) if n else math.nan,
                float(z.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan,
                float(np.median(z)) if n else math.nan, len(group) - n))
    return rows


def elpd_difference(record: Mapping[str, Any]) -> tuple[float, float] | None:
    """(ELPD of the true model - ELPD of the best other model, its se); None if not compared."""
    loo = record.get("loo")
    if not loo:
        return None
    rank = {r["model"]: r for r in loo["ranking"]}
    true = rank[record["truth_model"]]
    others = [r for m, r in rank.items() if m != record["truth_model"]]
    best_other = max(others, key=lambda r: r["elpd_loo"])
    # arviz's dse is the se of each model's difference to the top-ranked one
    se = true["dse"] if true["elpd_diff"] > 0 else best_other["dse"]
    return true["elpd_loo"] - best_other["elpd_loo"], float(se)


def preference_table(records: Iterable[Mapping[str, Any]]) -> list[PreferenceRow]:
    rows = []
    for (model, snr), group in _groups(records).items():
        diffs = [d for d in (elpd_difference(r) for r in group) if d is not None]
        rows.append(PreferenceRow(model, snr, len(diffs), sum(d > 0 for d, _ in diffs),
                                  sum(d > 2 * se for d, se in diffs), len(group) - len(diffs)))
    return rows


def jackknife_table(records: Iterable[Mapping[str, Any]]) -> list[JackknifeRow]:
    by_model: dict[str, list] = defaultdict(list)
    for r in records:
        by_model[r["model"]].append(r)
    rows = []
    for model, group in sorted(by_model.items()):
        full = [r for r in group if r["subset"] == 0]
        subsets = [r for r in group if r["subset"] > 0]
        ok = [r for r in subsets if r["fit"]["converged"]]
        full_ok = full[0]["fit"]["posterior"] if full and full[0]["fit"]["converged"] else None
        names = full[0]["free"] if full else (group[0]["free"] if group else [])
        for name in names:
            m = np.array([r["fit"]["posterior"][name]["q50"] for r in ok], float)
            k = m.size
            jk = float(math.sqrt((k - 1) / k * np.sum((m - m.mean()) ** 2))) if k > 1 else math.nan
            rows.append(JackknifeRow(
                model, name, full_ok[name]["q50"] if full_ok else math.nan,
                full_ok[name]["sd"] if full_ok else math.nan, k, jk,
                len(group) - len(ok) - (1 if full_ok else 0)))
    return rows


# -- text ------------------------------------------------------------------------------
def _f(x: float, fmt: str = ".3f") -> str:
    return "n/a" if not math.isfinite(x) else format(x, fmt)


def _table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def inject_recover_markdown(campaign_id: str, records: Sequence[Mapping[str, Any]],
                            n_tasks: int) -> str:
    cov, bias, pref = (coverage_table(records), bias_table(records),
                       preference_table(records))
    parts = [
        f"## Campaign {campaign_id}: inject-recover",
        f"{len(records)} of {n_tasks} tasks stored. Coverage of the 90 % intervals of the "
        "true model's converged fits (binomial se; calibrated: 85-95 %):",
        _table(["truth", "parameter", "S/N", "n", "inside", "coverage", "se", "calibrated",
                "not converged"],
               [(r.truth_model, r.parameter, f"{r.snr:g}", str(r.n), str(r.inside),
                 _f(100 * r.coverage, ".1f") + " %", _f(100 * r.se, ".1f") + " %",
                 "yes" if r.calibrated else "no", str(r.not_converged)) for r in cov]),
        "Bias, (median - truth) / posterior sd, of the true model's converged fits:",
        _table(["truth", "parameter", "S/N", "n", "mean", "se", "median", "not converged"],
               [(r.truth_model, r.parameter, f"{r.snr:g}", str(r.n), _f(r.mean), _f(r.se),
                 _f(r.median), str(r.not_converged)) for r in bias]),
        "Preference for the true hypothesis by PSIS-LOO (tasks whose fits all converged):",
        _table(["truth", "S/N", "compared", "dELPD > 0", "fraction", "dELPD > 2 se",
                "fraction", "not compared"],
               [(r.truth_model, f"{r.snr:g}", str(r.compared), str(r.preferred),
                 _f(r.fraction, ".2f"), str(r.preferred_2se), _f(r.fraction_2se, ".2f"),
                 str(r.not_compared)) for r in pref]),
    ]
    optima = [r for r in optima_table(records) if r.started]
    if optima:
        parts += [
            f"Second optima within {SECOND_OPTIMUM_NATS:g} nats of the best (converged fits of "
            "the true model started at the optimum; their chains may miss that mass):",
            _table(["truth", "S/N", "started at optimum", "second optimum", "closest (nats)"],
                   [(r.truth_model, f"{r.snr:g}", str(r.started), str(r.second_optimum),
                     _f(r.closest_nats, ".1f")) for r in optima])]
    return "\n\n".join(parts) + "\n"


def jackknife_markdown(campaign_id: str, records: Sequence[Mapping[str, Any]],
                       n_tasks: int) -> str:
    rows = jackknife_table(records)
    return "\n\n".join([
        f"## Campaign {campaign_id}: jackknife",
        f"{len(records)} of {n_tasks} tasks stored. Delete-one-group jackknife se of the "
        "posterior median against the full cube's posterior sd:",
        _table(["model", "parameter", "full median", "full sd", "groups", "jackknife se",
                "ratio", "not converged"],
               [(r.model, r.parameter, _f(r.full_median, ".4g"), _f(r.full_sd, ".4g"),
                 str(r.groups), _f(r.jackknife_se, ".4g"), _f(r.ratio, ".2f"),
                 str(r.not_converged)) for r in rows]),
    ]) + "\n"


def markdown(campaign_id: str, kind: str, records: Sequence[Mapping[str, Any]],
             n_tasks: int) -> str:
    """The campaign's tables as markdown (inject-recover or jackknife)."""
    if kind == "jackknife":
        return jackknife_markdown(campaign_id, records, n_tasks)
    return inject_recover_markdown(campaign_id, records, n_tasks)


def tables_json(kind: str, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The tables as JSON-ready rows (with the derived columns)."""
    def rows(items, extra):
        return [{**asdict(r), **{k: getattr(r, k) for k in extra}} for r in items]

    if kind == "jackknife":
        return {"jackknife": rows(jackknife_table(records), ["ratio"])}
    return {"coverage": rows(coverage_table(records), ["coverage", "se", "calibrated"]),
            "bias": rows(bias_table(records), []),
            "preference": rows(preference_table(records), ["fraction", "fraction_2se"]),
            "optima": rows(optima_table(records), [])}


# -- figures ---------------------------------------------------------------------------
def coverage_figure(rows: Sequence[CoverageRow]) -> Figure:
    """Coverage of the 90 % intervals against S/N, one panel per truth model, with
    binomial error bars and the calibrated band."""
    models = sorted({r.truth_model for r in rows})
    fig = Figure(figsize=(5.5 * max(len(models), 1), 4))
    axes = fig.subplots(1, max(len(models), 1), squeeze=False)[0]
    for ax, model in zip(axes, models, strict=False):
        ax.axhspan(100 * CALIBRATED[0], 100 * CALIBRATED[1], color="0.9", label="85-95 %")
        ax.axhline(90, color="0.5", lw=0.8)
        for name in dict.fromkeys(r.parameter for r in rows if r.truth_model == model):
            sel = [r for r in rows if r.truth_model == model and r.parameter == name and r.n]
            ax.errorbar([r.snr for r in sel], [100 * r.coverage for r in sel],
                        yerr=[100 * r.se for r in sel], marker="o", capsize=3, label=name)
        ax.set_xscale("log")
        ax.set_xlabel("peak S/N")
        ax.set_ylabel("coverage of the 90 % interval (%)")
        ax.set_ylim(0, 102)
        ax.set_title(f"truth: {model}")
        ax.legend(fontsize=7, loc="lower right")
    return fig


def bias_figure(rows: Sequence[BiasRow]) -> Figure:
    """Mean bias in posterior sd against S/N, one panel per truth model."""
    models = sorted({r.truth_model for r in rows})
    fig = Figure(figsize=(5.5 * max(len(models), 1), 4))
    axes = fig.subplots(1, max(len(models), 1), squeeze=False)[0]
    for ax, model in zip(axes, models, strict=False):
        ax.axhline(0, color="0.5", lw=0.8)
        for name in dict.fromkeys(r.parameter for r in rows if r.truth_model == model):
            sel = [r for r in rows if r.truth_model == model and r.parameter == name and r.n]
            ax.errorbar([r.snr for r in sel], [r.mean for r in sel],
                        yerr=[0 if not math.isfinite(r.se) else r.se for r in sel],
                        marker="o", capsize=3, label=name)
        ax.set_xscale("log")
        ax.set_xlabel("peak S/N")
        ax.set_ylabel("(median - truth) / sd")
        ax.set_title(f"truth: {model}")
        ax.legend(fontsize=7)
    return fig
