"""Keep the test session out of the user's real home, and prove it.

:meth:`HomeGuard.isolate` runs when the root conftest is imported, before any
test module (and so torch, Lightning, matplotlib, dask) is imported and before
any session fixture runs. It

- points ``HOME``, the ``XDG_*`` directories and the per-library cache and
  config variables (``MPLCONFIGDIR``, ``TORCH_HOME``, ``DASK_CONFIG``, ...) at
  a fresh temporary folder for the whole session, so every ``~`` expansion,
  ``Path.home()`` and subprocess that inherits the environment lands there;
- sets ``EXOCUBE_HOME`` to ``<that folder>/.exocube`` for code that runs
  outside a test's own home (session fixtures; the autouse ``exocube_home``
  fixture still gives each test its own), and removes the user's other
  ``EXOCUBE_*`` settings (``EXOCUBE_DATABASE_URL``, ``EXOCUBE_CONFIG``, ...), so
  that no session fixture records test rows in the user's own catalogue;
- takes a snapshot of the real home (``$HOME`` at start): names, sizes and
  mtimes, every level of ``~/.exocube``, ``SNAPSHOT_DEPTH`` levels elsewhere (a
  directory's mtime changes when an entry is added to it, so a new file one
  level deeper still shows). When the passwd entry's home differs (``~`` falls
  back to it in a child started without ``HOME``), its ``.exocube`` is watched
  too.

At the end of the session it takes the snapshot again; any new, changed or
removed path fails the run (exit status 1) with the list of paths. The real
home's state is compared, not the writer, so another program writing to the
same home during the run is reported too: run the suite with ``HOME`` pointed
at an empty folder to be sure the finding is the suite's.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SNAPSHOT_DEPTH = 4
FULL_DEPTH = (".exocube",)  # watched at every level
MAX_REPORTED = 50
KEEP_ENV = ("EXOCUBE_REQUIRE_SERVICES", "EXOCUBE_TEST_PG_URL", "EXOCUBE_TEST_TINY_MODEL_DIR")

Entry = tuple[bool, int, int]  # is_dir, size, mtime_ns


def _home_env(home: Path) -> dict[str, str]:
    """Environment variables that make libraries keep their files under ``home``."""
    cache, config = home / ".cache", home / ".config"
    return {
        "HOME": str(home),
        "USERPROFILE": str(home),
        "XDG_CACHE_HOME": str(cache),
        "XDG_CONFIG_HOME": str(config),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "MPLCONFIGDIR": str(config / "matplotlib"),
        "TORCH_HOME": str(cache / "torch"),
        "TRITON_CACHE_DIR": str(cache / "triton"),
        "TORCHINDUCTOR_CACHE_DIR": str(cache / "torchinductor"),
        "DASK_CONFIG": str(config / "dask"),
        "NUMBA_CACHE_DIR": str(cache / "numba"),
        "JAX_COMPILATION_CACHE_DIR": str(cache / "jax"),
        "HF_HOME": str(cache / "huggingface"),
        "PYTHONUSERBASE": str(home / ".local"),
        "EXOCUBE_HOME": str(home / ".exocube"),
    }


def snapshot(home: Path, only_exocube: bool = False) -> dict[str, Entry]:
    """Relative path -> (is_dir, size, mtime_ns) of ``home``'s tree, depth-limited
    (or of its ``.exocube`` folder alone)."""
    out: dict[str, Entry] = {}
    if only_exocube:
        folder = home / FULL_DEPTH[0]
        if folder.is_dir():
            out[FULL_DEPTH[0]] = (True, 0, folder.lstat().st_mtime_ns)
            _walk(home, folder, 1, 10_000, out)
    elif home.is_dir():
        _walk(home, home, 0, SNAPSHOT_DEPTH, out)
    return out


def _walk(root: Path, folder: Path, depth: int, limit: int, out: dict[str, Entry]) -> None:
    try:
        entries = list(os.scandir(folder))
    except OSError:  # unreadable or vanished while we looked: nothing to compare
        return
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        is_dir = entry.is_dir(follow_symlinks=False)
        rel = os.path.relpath(entry.path, root)
        out[rel] = (is_dir, 0 if is_dir else st.st_size, st.st_mtime_ns)
        full = depth == 0 and entry.name in FULL_DEPTH
        if is_dir and (depth + 1 < limit or full):
            _walk(root, Path(entry.path), depth + 1, 10_000 if full else limit, out)


def differences(before: dict[str, Entry], after: dict[str, Entry]) -> list[str]:
    """Lines naming every new, changed or removed path."""
    lines = [f"new      {p}" for p in sorted(after.keys() - before.keys())]
    lines += [f"changed  {p}" for p in sorted(before.keys() & after.keys())
              if before[p] != after[p]]
    lines += [f"removed  {p}" for p in sorted(before.keys() - after.keys())]
    return lines


def real_homes() -> dict[Path, bool]:
    """Home -> whether only its ``.exocube`` is watched: ``$HOME`` in full, and the
    passwd entry's home (``~`` in a child started without HOME) for ``.exocube``.

    Other programs of the user write to the passwd home at any time (on a shared
    machine, other people's runs too); a run with HOME pointed elsewhere watches only
    exocube's own folder there, so that their writes are not blamed on the suite.
    """
    homes: dict[Path, bool] = {}
    with contextlib.suppress(KeyError):  # a uid without a passwd entry has no such home
        homes[Path(pwd.getpwuid(os.getuid()).pw_dir).resolve()] = True
    if os.environ.get("HOME"):
        homes[Path(os.environ["HOME"]).resolve()] = False
    return homes


@dataclass
class HomeGuard:
    """The session's own home, the real homes' snapshots, and the saved environment."""

    session_home: Path
    watched: dict[Path, tuple[bool, dict[str, Entry]]]
    saved_env: dict[str, str | None]
    problems: list[str] = field(default_factory=list)

    @classmethod
    def isolate(cls) -> HomeGuard:
        """Snapshot the real homes, then point the environment at a fresh home."""
        watched = {home: (only, snapshot(home, only)) for home, only in real_homes().items()}
        session_home = Path(tempfile.mkdtemp(prefix="exocube-test-home-")).resolve()
        env = _home_env(session_home)
        users = [k for k in os.environ if k.startswith("EXOCUBE_") and k not in KEEP_ENV]
        saved = {k: os.environ.get(k) for k in [*env, *users]}
        for key in users:
            del os.environ[key]
        os.environ.update(env)
        return cls(session_home, watched, saved)

    def check(self) -> list[str]:
        """Lines naming what changed in the real homes since :meth:`isolate`."""
        lines = []
        for home, (only, before) in self.watched.items():
            lines += [f"{line[:9]}{home / line[9:]}"
                      for line in differences(before, snapshot(home, only))]
        return lines

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.problems = self.check()
        if self.problems:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.problems:
            return
        tr = terminalreporter
        tr.section("writes to the real home", sep="=", red=True, bold=True)
        tr.line(f"the test session wrote to the real home ({len(self.problems)} paths); "
                "tests must write only under their own HOME (the session's is "
                f"{self.session_home}):", red=True)
        for line in self.problems[:MAX_REPORTED]:
            tr.line("  " + line)
        if len(self.problems) > MAX_REPORTED:
            tr.line(f"  ... and {len(self.problems) - MAX_REPORTED} more")

    def pytest_unconfigure(self) -> None:
        for key, value in self.saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(self.session_home)
