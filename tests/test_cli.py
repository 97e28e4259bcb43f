"""The command line: ``exocube generate`` and ``exocube demo``, their output and their errors.

Bad input exits non-zero with a message naming the field, the value and the
valid range, and writes nothing: no output directory, no catalogue.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from exocube.cli import main

ROW = {
    "name": "b", "radius_earth": 1.1, "mass_earth": 1.3, "orbital_period_days": 12.0,
    "insolation_earth": 0.9, "stellar_teff_k": 3300.0, "stellar_logg_cgs": 4.9,
    "stellar_metallicity_dex": 0.1, "host_mass_msun": 0.3,
}


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the ``exocube`` entry point; exit code, stdout, stderr (whitespace-normalised)."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    code = info.value.code if isinstance(info.value.code, int) else 1
    return code, " ".join(out.split()), " ".join(err.split())


def csv_file(tmp_path: Path, rows: list[dict[str, object]]) -> Path:
    path = tmp_path / "planets.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("command", ["generate", "demo"])
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([command, "--help"], capsys)
    assert code == 0 and "--out" in out


def test_generate_writes_runs_and_a_rerun_skips_them(
    tmp_path: Path, exocube_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "runs"
    argv = ["generate", "--runs", "3", "--out", str(out_dir), "--seed", "5", "--nlat", "8",
            "--nlon", "16", "--nlev", "6"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert "3 run(s) generated, 0 already complete" in out
    assert sorted(p.name for p in out_dir.iterdir()) == [f"gen-s5-n3-{i:05d}.nc" for i in range(3)]
    assert (exocube_home / "catalog.sqlite").is_file()
    code, out, _ = run(argv, capsys)
    assert code == 0 and "0 run(s) generated, 3 already complete" in out


def test_generate_a_smaller_ensemble_after_a_larger_one_of_the_same_seed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = ["--nlat", "8", "--nlon", "16", "--nlev", "6", "--seed", "7"]
    code, _, err = run(["generate", "--runs", "6", "--out", str(tmp_path / "a"), *grid], capsys)
    assert code == 0, err
    code, out, err = run(["generate", "--runs", "3", "--out", str(tmp_path / "b"), *grid],
                         capsys)
    assert code == 0, err
    assert "3 run(s) generated, 0 already complete" in out


def test_generate_from_csv_names_runs_after_planets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = csv_file(tmp_path, [{**ROW, "name": "LP 791-18 d"}])
    code, _, err = run(["generate", "--from-csv", str(path), "--out", str(tmp_path / "o"),
                        "--nlat", "8", "--nlon", "16", "--nlev", "6"], capsys)
    assert code == 0, err
    assert (tmp_path / "o" / "LP_791-18_d.nc").is_file()


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("radius_earth", -1.0, "radius_earth=-1.0 is invalid: expected a finite number in "
                               "[0.5, 2.5] R_earth"),
        ("mass_earth", float("nan"), "mass_earth=nan is invalid: expected a finite number in "
                                     "[0.1, 12.0] M_earth"),
        ("stellar_teff_k", 12000.0, "stellar_teff_k=12000.0 is invalid: expected a finite "
                                    "number in [2300.0, 7000.0] K"),
    ],
)
def test_bad_values_name_field_value_range_and_row(
    tmp_path: Path, exocube_home: Path, capsys: pytest.CaptureFixture[str],
    field: str, value: float, expected: str,
) -> None:
    path = csv_file(tmp_path, [ROW, {**ROW, "name": "bad", field: value}])
    out_dir = tmp_path / "runs"
    code, _, err = run(["generate", "--from-csv", str(path), "--out", str(out_dir)], capsys)
    assert code == 1
    assert expected in err
    assert "data row 2 (bad)" in err
    assert "Traceback" not in err
    assert not out_dir.exists()
    assert not (exocube_home / "catalog.sqlite").exists()


def test_missing_column_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = csv_file(tmp_path, [{k: v for k, v in ROW.items() if k != "host_mass_msun"}])
    code, _, err = run(["generate", "--from-csv", str(path), "--out", str(tmp_path / "o")],
                       capsys)
    assert code == 1
    assert "lacks the column(s) for host_mass_msun" in err and "st_mass" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("content", [None, b"", b"\xff\xfe\x00\x81 not text"])
def test_unreadable_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None
) -> None:
    path = tmp_path / "planets.csv"
    if content is not None:
        path.write_bytes(content)
    code, _, err = run(["generate", "--from-csv", str(path), "--out", str(tmp_path / "o")],
                       capsys)
    assert code == 1
    assert str(path) in err
    assert not (tmp_path / "o").exists()


def test_skip_invalid_rows_on_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = csv_file(tmp_path, [ROW, {**ROW, "name": "bad", "radius_earth": 9.0}])
    code, out, err = run(["generate", "--from-csv", str(path), "--on-invalid", "skip",
                          "--out", str(tmp_path / "o"), "--nlat", "8", "--nlon", "16",
                          "--nlev", "6"], capsys)
    assert code == 0, err
    assert "1 run(s) generated" in out and "skipped 1 invalid row" in err
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["b.nc"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--runs", "0"], 2, "--runs"),
        (["--runs", "2", "--nlat", "1"], 1, "nlat >= 2"),
        (["--runs", "2", "--phase-bins", "0"], 2, "--phase-bins"),
        ([], 1, "runs=None is invalid"),
    ],
)
def test_bad_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int,
    message: str,
) -> None:
    got, _, err = run(["generate", "--out", str(tmp_path / "o"), *args], capsys)
    assert got == code
    assert message in err
    assert not (tmp_path / "o").exists()


def test_demo_generates_the_default_ensemble_and_says_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], recwarn: pytest.WarningsRecorder
) -> None:
    code, out, err = run(["demo", "--out", str(tmp_path / "demo"), "--runs", "10",
                          "--epochs", "1"], capsys)
    assert code == 0, err
    runs_dir = tmp_path / "demo" / "runs"
    assert str(runs_dir) in out
    assert len(list(runs_dir.glob("gen-s0-*.nc"))) == 10
    assert "10 runs added" in out
    assert (tmp_path / "demo" / "evaluation").is_dir()
    assert "pca_gp" in out and "TRAPPIST-1 e" in out
    banners = ("Tip:", "litmodels", "litlogger", "GPU available", "TPU available", "Seed set to",
               "`Trainer.fit` stopped", "Trainable params", "| Name")
    assert [b for b in banners if b in out + err] == [], (out + err)[-3000:]
    assert [c for c in out + err if ord(c) >= 0x1F000 or 0x2600 <= ord(c) <= 0x27BF] == []
    assert not [w for w in recwarn if "provide both args and command line" in str(w.message)]


@pytest.mark.slow
def test_generate_starts_a_local_dask_cluster_for_an_ensemble(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["generate", "--runs", "8", "--out", str(tmp_path / "o"), "--nlat", "8",
                          "--nlon", "16", "--nlev", "6"], capsys)
    assert code == 0, err
    assert "8 run(s) generated" in out
    assert len(list((tmp_path / "o").glob("gen-s0-*.nc"))) == 8
