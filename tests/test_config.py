"""Settings: environment, TOML file, precedence and unknown-key errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from exocube.config import load_settings
from exocube.errors import ConfigError, ExocubeError


def test_defaults_live_under_home(exocube_home: Path) -> None:
    s = load_settings()
    assert s.home == exocube_home
    assert s.database_url == f"sqlite:///{exocube_home / 'catalog.sqlite'}"
    assert s.store_root == exocube_home / "stores"
    assert s.s3.storage_options() == {"anon": False}


def test_toml_file_and_env_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('store_root = "/data/stores"\n[s3]\nendpoint_url = "http://127.0.0.1:9"\n'
                   'region = "toml-region"\n[dask]\nn_workers = 3\n')
    monkeypatch.setenv("EXOCUBE_CONFIG", str(cfg))
    monkeypatch.setenv("EXOCUBE_S3__REGION", "env-region")
    s = load_settings()
    assert s.store_root == Path("/data/stores")
    assert s.dask.n_workers == 3
    assert s.s3.region == "env-region"  # environment beats the file
    assert s.s3.storage_options()["client_kwargs"] == {
        "endpoint_url": "http://127.0.0.1:9", "region_name": "env-region"}


def test_home_config_toml_is_read(exocube_home: Path) -> None:
    exocube_home.mkdir(parents=True)
    (exocube_home / "config.toml").write_text('database_url = "sqlite:////tmp/x.sqlite"\n')
    assert load_settings().database_url == "sqlite:////tmp/x.sqlite"


@pytest.mark.parametrize("body, key", [
    ("bogus = 1\n", "bogus"),
    ("[s3]\nendpoint = 'x'\n", "s3.endpoint"),
])
def test_unknown_key_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str,
                              key: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(body)
    monkeypatch.setenv("EXOCUBE_CONFIG", str(cfg))
    with pytest.raises(ConfigError, match=f"unknown setting '{key}'") as info:
        load_settings()
    assert isinstance(info.value, ExocubeError)
    assert str(cfg) in str(info.value)


def test_bad_value_and_bad_syntax(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[dask]\nn_workers = 0\n")
    monkeypatch.setenv("EXOCUBE_CONFIG", str(cfg))
    with pytest.raises(ConfigError, match=r"dask.n_workers.*got 0"):
        load_settings()
    cfg.write_text("home = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings()


def test_missing_explicit_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXOCUBE_CONFIG", str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigError, match="does not name a file"):
        load_settings()


def test_api_keys_from_env_are_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXOCUBE_API_KEYS", '["k1", "k2"]')
    s = load_settings()
    assert [k.get_secret_value() for k in s.api_keys] == ["k1", "k2"]
    assert "k1" not in repr(s)
