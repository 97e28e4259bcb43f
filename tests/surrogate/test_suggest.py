"""Suggested next runs: the batch criterion on analytic cases, and end to end on a tiny deep
ensemble, whose design CSV both `exocube generate --from-csv` and `exocube simulate` read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tiny_model import TinyEnsemble, TinyModel

from exocube.cli import main as exocube_main
from exocube.config import get_settings
from exocube.errors import ExocubeError, ParameterError
from exocube.gcm.exoplasim_config import read_design
from exocube.gcm.sampling import read_csv_runs
from exocube.surrogate import ModelChoice, Surrogate
from exocube.surrogate.suggest import (
    penalised_batch,
    suggest_runs,
    uncertainty_scores,
    write_design,
)


def test_each_output_weighs_the_same_whatever_its_units() -> None:
    spreads = [{"ts": 1.0, "hus": 1e-5}, {"ts": 3.0, "hus": 3e-5}]
    np.testing.assert_allclose(uncertainty_scores(spreads), [0.5, 1.5])
    # an output with no spread anywhere contributes 0, not NaN
    np.testing.assert_allclose(uncertainty_scores([{"a": 1.0, "b": 0.0},
                                                   {"a": 3.0, "b": 0.0}]), [0.25, 0.75])


def test_penalisation_moves_the_second_pick_to_another_uncertain_region() -> None:
    x = np.linspace(0.0, 1.0, 101)[:, None]
    # two bumps of uncertainty: a high one at 0.2 and a lower one at 0.8
    u = 1.0 * np.exp(-((x[:, 0] - 0.2) / 0.1) ** 2) + 0.6 * np.exp(-((x[:, 0] - 0.8) / 0.1) ** 2)
    picks, scores = penalised_batch(x, u, 2)
    assert x[picks[0], 0] == pytest.approx(0.2)
    assert x[picks[1], 0] == pytest.approx(0.8, abs=0.03)  # not 0.21, next to the first
    assert scores[0] == pytest.approx(1.0)
    # without penalisation the top two would be neighbours
    assert abs(np.argsort(u)[-2] - picks[0]) == 1
    picks, _ = penalised_batch(x, u, 101)  # every candidate, each once
    assert sorted(picks) == list(range(101))


def test_suggested_runs_are_the_most_uncertain_and_readable_as_designs(
        tiny_ensemble: TinyEnsemble, tmp_path) -> None:
    s = Surrogate.from_catalogue(tiny_ensemble.database_url,
                                 choice=ModelChoice("model", str(tiny_ensemble.ensemble_id)))
    chosen = suggest_runs(s, 3, n_candidates=24, seed=4)
    again = suggest_runs(s, 3, n_candidates=24, seed=4)
    assert [c.run_id for c in chosen] == [c.run_id for c in again]  # seeded
    assert len({c.candidate for c in chosen}) == 3
    assert chosen[0].score == pytest.approx(chosen[0].uncertainty)
    wider = suggest_runs(s, 24, n_candidates=24, seed=4)
    assert chosen[0].uncertainty == pytest.approx(max(c.uncertainty for c in wider))
    assert np.mean([c.uncertainty for c in wider]) == pytest.approx(1.0)
    design, scores = write_design(chosen, tmp_path / "next.csv", {"seed": 4})
    generated = read_csv_runs(design)
    simulated = read_design(design)
    assert [r.run_id for r in generated] == [c.run_id for c in chosen]
    assert [r.run_id for r in simulated] == [c.run_id for c in chosen]
    for run, c in zip(generated, chosen, strict=True):
        for name in ("radius_earth", "insolation_earth", "surface_pressure_bar"):
            assert run.params[name] == pytest.approx(c.params[name], rel=1e-12)
    table = pd.read_csv(scores, comment="#")
    assert list(table["run_id"]) == [c.run_id for c in chosen]
    assert scores.read_text().startswith("# seed: 4")


def test_a_single_model_and_bad_sizes_are_refused(tiny_model: TinyModel,
                                                  tiny_ensemble: TinyEnsemble) -> None:
    single = Surrogate.from_catalogue(
        tiny_ensemble.database_url, choice=ModelChoice("model", str(tiny_ensemble.member_ids[0])))
    with pytest.raises(ExocubeError, match="gives no uncertainty: suggest-runs needs a deep"):
        suggest_runs(single, 2, n_candidates=4)
    with pytest.raises(ParameterError, match="candidates"):
        suggest_runs(single, 5, n_candidates=4)
    with pytest.raises(ParameterError, match="n"):
        suggest_runs(single, 0)


def test_cli_writes_the_design_and_its_scores(tiny_ensemble: TinyEnsemble, tmp_path,
                                              monkeypatch, capsys) -> None:
    monkeypatch.setenv("EXOCUBE_DATABASE_URL", tiny_ensemble.database_url)
    get_settings.cache_clear()
    out = tmp_path / "design" / "next.csv"
    try:
        with pytest.raises(SystemExit) as exit_info:
            exocube_main(["suggest-runs", "--model", str(tiny_ensemble.ensemble_id), "--n", "2",
                          "--candidates", "8", "--out", str(out), "--prefix", "round1"])
    finally:
        get_settings.cache_clear()
    assert exit_info.value.code in (0, None)
    assert len(read_design(out)) == 2
    assert (tmp_path / "design" / "next.scores.csv").exists()
    text = capsys.readouterr().out
    assert f"round1-m{tiny_ensemble.ensemble_id}-s0-000" in text and "wrote" in text
