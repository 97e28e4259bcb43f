"""``exocube demo`` as ``make demo`` runs it: the default 500-run ensemble and the shipped
pre-trained surrogate, which must come out ahead of PCA + GP on the held-out runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from test_cli import run


@pytest.mark.slow
@pytest.mark.timeout(1800)  # about 3.5 minutes on a quiet machine
def test_default_demo_puts_the_shipped_unet_ahead_of_pca_gp(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "demo"
    code, out, err = run(["demo", "--out", str(out_dir)], capsys)
    assert code == 0, err[-3000:]
    assert "500 runs added" in out and "the shipped pre-trained model" in out
    rmse = {m: float(v) for m, v in re.findall(r"(\w+): lat-weighted RMSE ta = ([\d.]+) K",
                                               out)}
    assert rmse["unet"] < rmse["pca_gp"], out
    assert re.search(r"uncertainty \(std head\): spread-skill ratio ta \d", out), out
    metrics = json.loads((out_dir / "evaluation" / "metrics.json").read_text())
    assert metrics["n_runs"] == 100 and metrics["uncertainty"]["method"] == "std head"
    assert (out_dir / "evaluation" / "calibration.png").is_file()
    assert "TRAPPIST-1 e" in out


def test_other_data_needs_epochs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["demo", "--out", str(tmp_path / "d"), "--runs", "10"], capsys)
    assert code != 0 and "give --epochs N to train one on this data" in err
    assert not (tmp_path / "d").exists()
