"""``exocube ifu ...`` end to end: template -> params -> synth -> info -> moments -> pv,
and the CLI's error messages for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ifu_helpers import small_template

from exocube.cli import main
from exocube.ifu.cube import write_s3d


def call(*args: str) -> int:
    """Run ``exocube ifu ...`` in this process; its exit status."""
    try:
        main(["ifu", *args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def run(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert call(*args) == 0
    return json.loads(capsys.readouterr().out)


def error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert call(*args) == 1
    return " ".join(capsys.readouterr().err.split())


def test_synth_to_quicklook(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tpl = write_s3d(small_template(), tmp_path / "tpl_s3d.fits")
    assert call("params", "--model", "disk") == 0
    toml = capsys.readouterr().out
    assert toml.startswith('model = "disk"') and "vmax_halo = 105.0" in toml
    params = tmp_path / "disk.toml"
    params.write_text(toml.replace("incl_deg = 85.0", "incl_deg = 88.0"))
    out = tmp_path / "syn_s3d.fits"
    got = run(capsys, "synth", "--model", "disk", "--params", str(params), "--like", str(tpl),
              "--snr", "15", "--seed", "4", "--out", str(out))
    truth = json.loads(Path(got["truth"]).read_text())
    assert truth["params"]["incl_deg"] == 88.0 and truth["noise"]["snr"] == 15.0
    info = run(capsys, "info", str(out))
    assert info["shape"] == [126, 15, 13] and "Halpha" in info["lines_in_band"]
    assert info["provenance"]["TARGNAME"] == "SYNTH-DISK"
    mom = run(capsys, "moments", str(out), "--out", str(tmp_path / "ql"), "--line",
              "Halpha,[NII]6585", "--min-snr", "0")
    assert {Path(p).name for p in mom["written"]} == {
        "ql_Halpha_moments.fits", "ql_Halpha_moments.png", "ql_NII6585_moments.fits",
        "ql_NII6585_moments.png"}
    pv = run(capsys, "pv", str(out), "--out", str(tmp_path / "ql"), "--pa", "30")
    assert all(Path(p).is_file() for p in pv["written"])


def test_cli_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tpl = write_s3d(small_template(), tmp_path / "tpl_s3d.fits")
    bad = tmp_path / "bad.toml"
    bad.write_text('[params]\nv_bh = 99999\n')
    err = error(capsys, "synth", "--model", "bowshock", "--params", str(bad), "--like",
                str(tpl), "--out", str(tmp_path / "x.fits"))
    assert "v_bh=99999" in err and "3000.0" in err
    assert not (tmp_path / "x.fits").exists()
    err = error(capsys, "moments", str(tpl), "--out", str(tmp_path / "q"), "--line",
                "[OIII]5008")
    assert "do not cover [OIII]5008" in err
    assert "bad.toml: not a readable FITS file" in error(capsys, "info", str(bad))
    bad.write_text('model = "disk"\n[params]\n')
    assert "model='disk' is invalid" in error(
        capsys, "synth", "--model", "bowshock", "--params", str(bad), "--like", str(tpl),
        "--out", str(tmp_path / "x.fits"))


def test_template_command_with_wave_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    from exocube.ifu.cube import read_s3d

    lin = run(capsys, "template", "--out", str(tmp_path / "lin_s3d.fits"))
    tab = run(capsys, "template", "--out", str(tmp_path / "tab_s3d.fits"), "--wave-table")
    a, b = read_s3d(lin["template"]), read_s3d(tab["template"])
    assert b.wave_table and not a.wave_table and b.shape == (1447, 53, 49)
    assert np.max(np.abs(a.wavelength_um - b.wavelength_um)) < 1e-9
