"""Campaign tables against analytic cases: coverage by construction with Gaussian
posteriors, known biases, constructed LOO rankings, the jackknife formula; unconverged
fits counted apart, never pooled."""

from __future__ import annotations

import math

import numpy as np
import pytest

from exocube.ifu import campaign_report as cr

Z90 = 1.6448536269514722  # the 95 % point of N(0, 1): [q05, q95] = m -+ Z90 sd


def fit(m: float, sd: float, converged: bool = True) -> dict:
    return {"converged": converged, "posterior": {"a": {
        "mean": m, "sd": sd, "q05": m - Z90 * sd, "q50": m, "q95": m + Z90 * sd}}}


def record(truth: float, m: float, sd: float, snr: float = 10.0, converged: bool = True,
           truth_model: str = "bowshock", loo: dict | None = None) -> dict:
    return {"truth_model": truth_model, "snr": snr, "truth": {"a": truth},
            "free": {truth_model: ["a"], "disk": ["a"]},
            "fits": {truth_model: fit(m, sd, converged), "disk": fit(0.0, 1.0)}, "loo": loo}


def test_coverage_counts_intervals_and_its_binomial_se():
    # 10 fits: truths at 0.5, 1.0, ... sd from the median; |z| <= 1.645 inside: 3 of them
    recs = [record(truth=z, m=0.0, sd=1.0) for z in (0.5, -1.0, 1.6, 1.7, -2.0, 2.5, 3.0,
                                                        -3.0, 4.0, 5.0)]
    (row,) = cr.coverage_table(recs)
    assert (row.n, row.inside, row.not_converged) == (10, 3, 0)
    assert row.coverage == pytest.approx(0.3)
    assert row.se == pytest.approx(math.sqrt(0.3 * 0.7 / 10))
    assert not row.calibrated


def test_unconverged_fits_are_counted_apart_never_pooled():
    good = [record(truth=0.1, m=0.0, sd=1.0) for _ in range(9)]
    bad = [record(truth=50.0, m=0.0, sd=1.0, converged=False) for _ in range(5)]
    (cov,) = cr.coverage_table(good + bad)
    assert (cov.n, cov.inside, cov.not_converged, cov.coverage) == (9, 9, 5, 1.0)
    (bias,) = cr.bias_table(good + bad)
    assert (bias.n, bias.not_converged) == (9, 5)
    assert bias.mean == pytest.approx(-0.1)


def test_gaussian_posteriors_with_known_truths_cover_90_percent_by_construction():
    # theta ~ N(0, 1), x ~ N(theta, 1): the posterior is N(x / 2, 1 / 2) exactly
    rng = np.random.default_rng(7)
    theta = rng.standard_normal(4000)
    x = theta + rng.standard_normal(4000)
    recs = [record(truth=t, m=xi / 2, sd=math.sqrt(0.5), snr=snr)
            for t, xi, snr in zip(theta, x, np.repeat([5.0, 20.0], 2000), strict=True)]
    rows = cr.coverage_table(recs)
    assert [r.snr for r in rows] == [5.0, 20.0]
    for r in rows:
        assert r.n == 2000 and abs(r.coverage - 0.9) < 3 * math.sqrt(0.09 / 2000)
        assert r.calibrated
    for b in cr.bias_table(recs):  # (median - truth) / sd ~ N(0, 1): unbiased
        assert abs(b.mean) < 3 / math.sqrt(2000)
        assert b.se == pytest.approx(1 / math.sqrt(2000), rel=0.1)


def test_a_constant_offset_is_reported_as_bias_in_posterior_sd():
    recs = [record(truth=t, m=t + 0.5 * 2.0, sd=2.0) for t in (-3.0, 0.0, 1.0, 7.0)]
    (b,) = cr.bias_table(recs)
    assert (b.n, b.mean, b.median) == (4, pytest.approx(0.5), pytest.approx(0.5))
    assert b.se == pytest.approx(0.0, abs=1e-12)


def loo(true_elpd: float, other_elpd: float, dse: float, truth: str = "bowshock") -> dict:
    """arviz ``compare`` rows: ranked by ELPD, differences and their se to the top one."""
    other = "disk" if truth == "bowshock" else "bowshock"
    rows = sorted([(truth, true_elpd), (other, other_elpd)], key=lambda r: -r[1])
    top = rows[0][1]
    return {"ranking": [{"model": m, "elpd_loo": e, "elpd_diff": top - e,
                         "dse": 0.0 if e == top else dse} for m, e in rows]}


def test_preference_counts_positive_and_decisive_elpd_differences():
    recs = [record(0.0, 0.0, 1.0, loo=loo(-100.0, -110.0, 2.0)),  # +10, > 2 se
            record(0.0, 0.0, 1.0, loo=loo(-100.0, -103.0, 2.0)),  # +3, < 2 se
            record(0.0, 0.0, 1.0, loo=loo(-100.0, -95.0, 1.0)),  # the other wins
            record(0.0, 0.0, 1.0, loo=None)]  # a fit did not converge: not compared
    (p,) = cr.preference_table(recs)
    assert (p.compared, p.preferred, p.preferred_2se, p.not_compared) == (3, 2, 1, 1)
    assert p.fraction == pytest.approx(2 / 3) and p.fraction_2se == pytest.approx(1 / 3)
    assert cr.elpd_difference(recs[2]) == (pytest.approx(-5.0), 1.0)


def with_optima(rec: dict, *gaps: float) -> dict:
    rec["fits"][rec["truth_model"]]["start"] = {
        "n_starts": 16, "failed_starts": 0,
        "optima": [{"potential": 10.0 + g, "delta": g, "starts": 1, "position": {}}
                   for g in (0.0, *gaps)]}
    return rec


def test_second_optima_near_the_best_are_counted_for_converged_optimum_starts():
    recs = [with_optima(record(0.0, 0.0, 1.0), 0.6, 9.0),   # second optimum 0.6 nats away
            with_optima(record(0.0, 0.0, 1.0), 12.0),       # far: not counted
            with_optima(record(0.0, 0.0, 1.0)),             # one optimum only
            with_optima(record(0.0, 0.0, 1.0, converged=False), 0.1),  # not converged
            record(0.0, 0.0, 1.0)]                          # prior start: no record
    (row,) = cr.optima_table(recs)
    assert (row.started, row.second_optimum, row.closest_nats) == (3, 1, 0.6)
    text = cr.markdown("ir-x", "inject-recover", recs, n_tasks=5)
    assert "| bowshock | 10 | 3 | 1 | 0.6 |" in text
    assert "Second optima" not in cr.markdown("ir-x", "inject-recover", recs[-1:], 1)


def test_jackknife_se_is_the_delete_one_formula():
    medians = [1.0, 2.0, 3.0, 4.0]
    recs = [{"model": "disk", "subset": 0, "free": ["a"], "fit": fit(2.5, 0.5)}]
    recs += [{"model": "disk", "subset": k + 1, "free": ["a"], "fit": fit(m, 0.6)}
             for k, m in enumerate(medians)]
    recs.append({"model": "disk", "subset": 5, "free": ["a"], "fit": fit(99.0, 1.0, False)})
    (row,) = cr.jackknife_table(recs)
    assert (row.groups, row.not_converged, row.full_median, row.full_sd) == (4, 1, 2.5, 0.5)
    assert row.jackknife_se == pytest.approx(math.sqrt(3 / 4 * 5.0))
    assert row.ratio == pytest.approx(math.sqrt(3.75) / 0.5)


def test_markdown_tables_and_figures(tmp_path):
    from exocube.ifu.fitplots import save

    recs = [record(0.3, 0.0, 1.0, snr=s, loo=loo(-10.0, -20.0, 1.0)) for s in (5.0, 10.0)]
    recs.append(record(0.3, 0.0, 1.0, snr=10.0, converged=False))
    text = cr.markdown("ir-x", "inject-recover", recs, n_tasks=4)
    assert "3 of 4 tasks stored" in text
    assert "| bowshock | a | 10 | 1 | 1 | 100.0 % | 0.0 % | no | 1 |" in text
    assert "| bowshock | 5 | 1 | 1 | 1.00 | 1 | 1.00 | 0 |" in text
    tables = cr.tables_json("inject-recover", recs)
    assert tables["coverage"][1]["not_converged"] == 1
    for fig, name in ((cr.coverage_figure(cr.coverage_table(recs)), "c.png"),
                      (cr.bias_figure(cr.bias_table(recs)), "b.png")):
        assert save(fig, tmp_path / name).read_bytes()[:4] == b"\x89PNG"
