"""``exocube acquire`` as a user runs it: help, usage errors (exit 2, no traceback,
nothing written), readable sizes in messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fault_server import FaultServer

from conftest import point_at, run_sources, vcf_gz
from exocube.acquire.run import Quotas, gb, tb
from exocube.acquire.sources import SOURCES
from exocube.acquire.units import format_bytes, quota_bytes
from exocube.cli import main
from exocube.errors import ConfigError


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The real ``exocube`` entry point: exit code, stdout, stderr (whitespace-normalised,
    rich's box characters dropped)."""
    code = 0
    try:
        main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    err = "".join(c for c in err if c not in "│╭╮╰╯─")
    return code, out, " ".join(err.split())


def test_help_lists_sources_domains_and_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(["acquire", "--help"], capsys)
    text = " ".join(out.split())
    assert code == 0
    for word in ("--sources", "--domains", "--max-download-gb", "--resume", "--dry-run",
                 "planetary_interiors", "nasa_exoplanet_archive", "Exit status"):
        assert word in text


@pytest.mark.parametrize(("args", "message"), [
    (["--max-download-gb", "nan"], "--max-download-gb nan: a quota must be a finite number"),
    (["--max-download-gb", "inf"], "--max-download-gb inf: a quota must be a finite number"),
    (["--max-download-gb", "-1"], "--max-download-gb -1.0: a quota must be a finite number"),
    (["--max-download-gb", "0"], "--max-download-gb 0.0: a quota must be a finite number"),
    (["--max-storage-tb", "-inf"], "--max-storage-tb -inf: a quota must be a finite number"),
    (["--max-storage-tb", "1e400"], "--max-storage-tb inf: a quota must be a finite number"),
    (["--max-download-gb", "1e-12"], "--max-download-gb 1e-12 is less than one byte"),
    (["--sources", ","], "--sources ',' has an empty name"),
    (["--sources", " "], "--sources ' ' has an empty name"),
    (["--sources", "kegg,"], "--sources 'kegg,' has an empty name"),
    (["--sources", "kegg", "--sources", ""], "--sources 'kegg,' has an empty name"),
    (["--domains", ","], "--domains ',' has an empty name"),
    (["--sources", "nosuch,kegg,other"], "--sources: unknown 'nosuch', 'other'; known: "
                                         + ", ".join(SOURCES)),
    (["--domains", "genomic"], "--domains: unknown 'genomic'; known: astrobiology,"),
    (["--sources", "kegg", "--domains", "genomics"],
     "no source matches --sources 'kegg' and --domains 'genomics'; kegg is astrobiology"),
    (["--resume", "20261201T000000Z-00000000", "--max-download-gb", "5"],
     "--resume continues the stored plan with its destination and quotas; it cannot be "
     "combined with --dest, --max-download-gb"),
])
def test_usage_errors_exit_2_with_the_option_and_value(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], exocube_home: Path,
    tmp_path: Path,
) -> None:
    code, out, err = cli(["acquire", *args, "--dest", str(tmp_path / "data")], capsys)
    assert code == 2, err
    assert message in err
    assert "Traceback" not in err and out == ""
    assert not (tmp_path / "data").exists() and not exocube_home.exists()


def test_quota_bytes() -> None:
    assert gb(None) is None and tb(None) is None
    assert gb(0.00001) == 10_000 and tb(2.5) == 2_500_000_000_000
    assert quota_bytes(1.5, 1000, "--x") == 1500
    for bad in (float("nan"), float("inf"), -float("inf"), -1.0, 0.0, 1e300):
        with pytest.raises(ConfigError, match="--max-download-gb"):
            gb(bad)


@pytest.mark.parametrize(("nbytes", "text"), [
    (0, "0 B"), (1, "1 B"), (999, "999 B"), (1000, "1.00 kB"), (10_000, "10.0 kB"),
    (99_960, "100 kB"), (999_999, "1.00 MB"), (3_150_000, "3.15 MB"), (123_456_789, "123 MB"),
    (10**9, "1.00 GB"), (2_988_094, "2.99 MB"), (4 * 10**12, "4.00 TB"), (10**18, "1.00 EB"),
])
def test_format_bytes(nbytes: int, text: str) -> None:
    assert format_bytes(nbytes) == text


def test_quota_messages_use_readable_units(
    archives: FaultServer, migrated: str, tmp_path: Path
) -> None:
    """The reason of a file skipped over quota gives sizes a reader can compare."""
    vcf = len(vcf_gz())
    summary = run_sources(tmp_path / "data", ["genomes1000"], Quotas(max_download_bytes=vcf))
    (reason,) = [r["reason"] for r in summary["sources"]["genomes1000"]["reasons"]]
    assert reason.startswith("download quota:")
    assert f"limit {format_bytes(vcf)}" in reason and "0.000 GB" not in reason
    stored = run_sources(tmp_path / "other", ["geocarb"], Quotas(max_storage_bytes=10))
    (reason,) = [r["reason"] for r in stored["sources"]["geocarb"]["reasons"]]
    assert reason.startswith("storage quota:") and "limit 10 B" in reason


def test_dry_run_table_gives_sizes_and_the_json_exact_bytes(
    archives: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(["acquire", "--sources", "genomes1000,nasa_exoplanet_archive",
                          "--dry-run"], capsys)
    assert code == 0, err
    plan = json.loads(out)
    genomes = plan["plan"]["source"]["genomes1000"]
    assert genomes["bytes"] == len(vcf_gz()) + sum(f["size"] for f in plan["files"]
                                                   if f["relpath"].endswith(".tbi"))
    assert f"genomes1000 genomics 2 {format_bytes(genomes['bytes'])} 0" in err
    assert "nasa_exoplanet_archive astronomy 1 unknown 1" in err
    assert plan["plan"]["total"] == {"files": 3, "bytes": genomes["bytes"], "unknown_size": 1,
                                     "sources_planned": 2, "sources_not_planned": 0}
    assert plan["not_planned"] == []


def test_resume_is_suggested_only_after_a_run_with_failed_files(
    archives: FaultServer, migrated: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    point_at(monkeypatch, {"geocarb__url": archives.url + "/paleo/moved.txt"})  # a 404
    code, out, err = cli(["acquire", "--sources", "geocarb,kegg", "--dest",
                          str(tmp_path / "data")], capsys)
    summary = json.loads(out)
    assert code == 2 and summary["totals"]["failed"] == 1
    assert f"1 file failed; once the cause is fixed, continue with: exocube acquire --resume " \
           f"{summary['run_id']}" in err
    code, out, err = cli(["acquire", "--sources", "kegg", "--dest", str(tmp_path / "data")],
                         capsys)
    assert code == 0 and "--resume" not in err
