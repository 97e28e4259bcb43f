"""``exocube ifu fit / report``: SIGKILL mid-fit then ``--resume`` (no duplicated or
missing draws), and bad input (unknown fit id, a cube without the lines, priors
outside a parameter's range, a database that does not answer): a clear error,
exit status 1, nothing written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from fit_fixtures import BLOCK, FREE, cli_args, write_cube, write_priors

from exocube.catalog import db as catalog_db
from exocube.cli import main
from exocube.ifu.chains import ChainStore
from exocube.ifu.cube import write_s3d
from exocube.ifu.template import build_template

N_BLOCKS = 6


def call(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    cube, truth = write_cube(folder)
    return cube, write_priors(folder, truth)


def error(capsys, *args: str) -> str:
    assert call(*args) == 1
    return " ".join(capsys.readouterr().err.split())


def test_unknown_fit_id(inputs, sqlite_url, capsys):
    cube, priors = inputs
    msg = error(capsys, *cli_args(cube, priors, sqlite_url), "--resume", "0123abcd")
    assert "no fit '0123abcd' in the catalogue" in msg
    msg = error(capsys, "ifu", "report", "0123abcd", "--db", sqlite_url)
    assert "no fit '0123abcd'" in msg


def test_a_cube_without_the_lines(tmp_path, sqlite_url, capsys):
    cube = write_s3d(build_template(shape=(30, 6, 6), wave_um=(1.40, 1.42)),
                     tmp_path / "blue_s3d.fits")
    msg = error(capsys, "ifu", "fit", str(cube), "--model", "disk", "--db", sqlite_url)
    assert "wavelengths 1.4000-1.4200 um do not hold" in msg and "Halpha (1.2893 um)" in msg
    msg = error(capsys, "ifu", "fit", str(cube), "--model", "disk", "--db", sqlite_url,
                "--lines", "[SIII]9533")
    assert "[SIII]9533 (1.8723 um)" in msg
    assert ChainStore(sqlite_url).fit_ids() == []


def test_priors_outside_a_parameters_range(inputs, tmp_path, sqlite_url, capsys):
    cube, _ = inputs
    bad = tmp_path / "bad.toml"
    bad.write_text('[priors]\nsigma = ["uniform", 0.0, 100.0]\n')
    msg = error(capsys, "ifu", "fit", str(cube), "--model", "bowshock", "--priors", str(bad),
                "--db", sqlite_url)
    assert "bad.toml: prior sigma=['uniform', 0.0, 100.0] is invalid" in msg
    assert "range [1.0, 500.0] km/s" in msg
    assert ChainStore(sqlite_url).fit_ids() == []


def test_a_database_that_does_not_answer(inputs, tmp_path, capsys):
    cube, priors = inputs
    before = sorted(p.name for p in tmp_path.iterdir())
    msg = error(capsys, *cli_args(cube, priors, "postgresql+psycopg://postgres@127.0.0.1:1/x"))
    assert "127.0.0.1:1" in msg
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "start"), [("sqlite", "prior"), ("postgresql", "optimum")])
def test_sigkill_mid_fit_then_resume(inputs, backend, start, request, capsys):
    """Kill -9 the CLI after its first committed block; --resume completes the chain (on
    PostgreSQL with chains started at the optimum: the resume keeps that setting and does
    not optimise again)."""
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url")
    catalog_db.upgrade(url)
    store = ChainStore(url)
    cube, priors = inputs
    args = [*cli_args(cube, priors, url), "--draws", str(N_BLOCKS * BLOCK), "--start", start]
    code = "import sys; from exocube.cli import main; main(sys.argv[1:])"
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    try:
        deadline = time.monotonic() + 400
        while not (store.fit_ids() and store.block_indices(store.fit_ids()[0])):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the CLI committed no block"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    (fit_id,) = store.fit_ids()
    assert store.fit(fit_id).sampler["start"] == start
    done = store.block_indices(fit_id)
    assert 1 <= len(done) < N_BLOCKS, done
    kept = store.draws(fit_id)
    found = store.fit(fit_id).start_report  # committed with the warm-up
    assert (found is not None) == (start == "optimum")
    capsys.readouterr()
    status = call(*args, "--resume", fit_id)
    out, err = capsys.readouterr()
    assert status in (0, 3), err  # converged or honestly not
    # a resumed fit does not optimise again: nothing printed, the stored report unchanged
    assert "chains start at the best of" not in out
    assert store.fit(fit_id).start_report == found
    assert store.block_indices(fit_id) == list(range(N_BLOCKS))
    draws = store.draws(fit_id)
    for name in FREE:
        assert draws[name].shape == (4, N_BLOCKS * BLOCK)
        # the blocks committed before the kill are unchanged, and no block repeats one
        assert np.array_equal(draws[name][:, :len(done) * BLOCK], kept[name])
        blocks = draws[name].reshape(4, N_BLOCKS, BLOCK)
        for i in range(N_BLOCKS - 1):
            assert not np.array_equal(blocks[:, i], blocks[:, i + 1])
    # resuming a complete fit adds nothing
    call(*args, "--resume", fit_id)
    assert store.block_indices(fit_id) == list(range(N_BLOCKS))
