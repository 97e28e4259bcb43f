"""The session's home guard: tests run under their own HOME, and a test that writes to
the real home fails the run (an inner pytest session, through pytester)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from exocube.config import load_settings
from home_guard import differences, snapshot

INNER_CONFTEST = """
from home_guard import HomeGuard

HOME_GUARD = HomeGuard.isolate()


def pytest_configure(config):
    config.pluginmanager.register(HOME_GUARD, "exocube-home-guard")
"""


def test_the_session_runs_under_its_own_home() -> None:
    home = Path.home()
    assert home == Path(os.environ["HOME"]) and home.name.startswith("exocube-test-home-")
    for var in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "MPLCONFIGDIR", "TORCH_HOME"):
        assert Path(os.environ[var]).is_relative_to(home), var
    assert Path("~/x").expanduser().parent == home


def test_the_users_exocube_settings_do_not_reach_the_session(pytester: pytest.Pytester,
                                                              tmp_path: Path) -> None:
    mine = f"sqlite:///{tmp_path / 'users-own.sqlite'}"
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_env="""
        import os

        def test_no_user_setting():
            assert "EXOCUBE_DATABASE_URL" not in os.environ
            assert os.environ["EXOCUBE_HOME"].startswith(os.environ["HOME"])
    """)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXOCUBE_DATABASE_URL", mine)
        result = pytester.runpytest("-p", "no:cacheprovider")
        assert os.environ["EXOCUBE_DATABASE_URL"] == mine  # restored after the session
    result.assert_outcomes(passed=1)


def test_each_test_has_its_own_exocube_home(exocube_home: Path, tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.home == exocube_home and exocube_home.is_relative_to(tmp_path)
    assert settings.database_url == f"sqlite:///{exocube_home / 'catalog.sqlite'}"


def test_a_child_process_inherits_the_session_home(exocube_home: Path) -> None:
    code = ("from pathlib import Path; from exocube.config import load_settings; "
            "print(Path.home()); print(load_settings().home)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == [os.environ["HOME"], str(exocube_home)]


def test_a_write_to_the_real_home_fails_the_run(pytester: pytest.Pytester) -> None:
    """The inner session's real home is this session's HOME (a temporary folder)."""
    real = Path(os.environ["HOME"])
    leak = real / ".exocube" / "catalog.sqlite"
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_leak=f"""
        from pathlib import Path

        def test_writes_to_the_real_home():
            Path({str(leak)!r}).parent.mkdir(exist_ok=True)
            Path({str(leak)!r}).write_text("rows of a test model")

        def test_writes_to_its_own_home():
            (Path.home() / "fine.txt").write_text("mine")
    """)
    try:
        result = pytester.runpytest("-p", "no:cacheprovider")
    finally:
        leak.unlink(missing_ok=True)
        leak.parent.rmdir()
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*writes to the real home*",
                                 f"*new      {leak.parent}", f"*new      {leak}"])
    assert "fine.txt" not in result.stdout.str()
    assert Path(os.environ["HOME"]) == real  # the inner session restored the environment


def test_a_session_that_stays_in_its_home_passes(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_clean="""
        from pathlib import Path

        def test_writes_to_its_own_home():
            (Path.home() / ".exocube").mkdir()
            (Path.home() / ".exocube" / "catalog.sqlite").write_text("mine")
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    assert "writes to the real home" not in result.stdout.str()



def test_the_snapshot_sees_every_level_of_exocube_and_four_levels_elsewhere(
        tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "a" / "b" / "c" / "d").mkdir(parents=True)
    (home / ".exocube" / "x" / "y" / "z").mkdir(parents=True)
    before, only = snapshot(home), snapshot(home, only_exocube=True)
    (home / ".exocube" / "x" / "y" / "z" / "catalog.sqlite").write_text("rows")
    (home / "a" / "b" / "c" / "new").write_text("level 4")
    (home / "a" / "b" / "c" / "d" / "deeper").write_text("level 5: seen as d's mtime")
    (home / "elsewhere.txt").write_text("not exocube's")
    assert set(differences(before, snapshot(home))) == {
        "new      .exocube/x/y/z/catalog.sqlite", "changed  .exocube/x/y/z",
        "new      a/b/c/new", "changed  a/b/c", "changed  a/b/c/d",
        "new      elsewhere.txt"}
    assert differences(only, snapshot(home, only_exocube=True)) == [
        "new      .exocube/x/y/z/catalog.sqlite", "changed  .exocube/x/y/z"]
