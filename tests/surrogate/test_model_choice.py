"""Which model answers: promotions in the catalogue, --model / --select, newest by default.
On SQLite and PostgreSQL (``catalog_url``), with the session's tiny checkpoint recorded
several times under different names and metrics."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from tiny_model import TinyModel

from exocube.catalog import ModelPromotion, current_revision, engine_for, session_scope, upgrade
from exocube.catalog.db import downgrade
from exocube.cli import main as exocube_main
from exocube.errors import ModelUnavailableError, ParameterError
from exocube.ml.record import record_model
from exocube.params import MODEL_INPUT_NAMES_V1
from exocube.surrogate import ModelChoice, Surrogate
from exocube.surrogate.loading import promotions
from exocube.surrogate.promotion import promote, unpromote

MODEL_MODES = ("scalar", "datacube", "joint")


def ids(s: Surrogate) -> dict[str, int]:
    return {m: s.models[m].info.id for m in MODEL_MODES if m in s.models}


def record(url: str, ckpt: str, name: str, loss: float | None = None) -> int:
    metrics = {} if loss is None else {"val/loss": loss, "val/r2": 1.0 - loss}
    return record_model(name, "datacube", ckpt, f"v-{name}", metrics, {}, database_url=url)


@pytest.fixture
def three(tiny_model: TinyModel, catalog_url: str) -> tuple[str, int, int, int]:
    """A good model, then a worse one, then a quick experiment without metrics (newest)."""
    good = record(catalog_url, tiny_model.checkpoint, "good", 0.1)
    worse = record(catalog_url, tiny_model.checkpoint, "worse", 0.5)
    quick = record(catalog_url, tiny_model.checkpoint, "quick")
    return catalog_url, good, worse, quick


def test_newest_answers_when_nothing_is_promoted(three: tuple[str, int, int, int]) -> None:
    url, _, _, quick = three
    s = Surrogate.from_catalogue(url)
    assert ids(s) == dict.fromkeys(MODEL_MODES, quick)
    assert s.models["datacube"].info.selected_by == "newest"
    assert s.status()["scalar"]["selected_by"] == "newest"


def test_a_promoted_model_is_not_replaced_by_a_newer_one(
        three: tuple[str, int, int, int], tiny_model: TinyModel) -> None:
    url, good, _, _ = three
    assert promote(url, good) == MODEL_MODES  # every mode the model can answer
    newer = record(url, tiny_model.checkpoint, "experiment", 9.0)
    s = Surrogate.from_catalogue(url)
    assert ids(s) == dict.fromkeys(MODEL_MODES, good)
    assert s.models["joint"].info.selected_by == "promoted"
    p = s.predict(training_point(s), "joint")
    assert p.model.id == good and p.model.selected_by == "promoted"
    assert ids(Surrogate.from_catalogue(url, choice=ModelChoice.parse(select="newest"))) == (
        dict.fromkeys(MODEL_MODES, newer))
    assert unpromote(url, ["scalar"]) == {"scalar": good}
    s = Surrogate.from_catalogue(url)
    assert ids(s) == {"scalar": newer, "datacube": good, "joint": good}
    assert unpromote(url) == {"datacube": good, "joint": good}
    assert promotions(url) == {}
    assert ids(Surrogate.from_catalogue(url)) == dict.fromkeys(MODEL_MODES, newer)


def test_promoting_again_moves_the_promotion(three: tuple[str, int, int, int]) -> None:
    url, good, worse, _ = three
    promote(url, good)
    assert promote(url, worse, ["datacube"]) == ("datacube",)
    assert promotions(url) == {"scalar": good, "datacube": worse, "joint": good}
    with session_scope(url) as session:  # one row per mode, enforced by the primary key
        assert session.scalar(sa.select(sa.func.count()).select_from(ModelPromotion)) == 3


def test_promote_refuses_what_cannot_answer(three: tuple[str, int, int, int],
                                            tmp_path: Path, tiny_model: TinyModel) -> None:
    url, *_ = three
    with pytest.raises(ModelUnavailableError, match="no catalogue model has id 999"):
        promote(url, 999)
    with pytest.raises(ParameterError, match="--mode='spectral'"):
        promote(url, 1, ["spectral"])
    ckpt = tmp_path / "moved.ckpt"
    shutil.copy(tiny_model.checkpoint, ckpt)
    gone = record(url, str(ckpt), "gone", 0.01)
    ckpt.unlink()
    with pytest.raises(ModelUnavailableError, match=r"cannot promote model \d+ \(gone\): its "
                       "checkpoint file is missing"):
        promote(url, gone)
    assert promotions(url) == {}


def test_a_promoted_model_that_vanished_is_not_silently_replaced(
        three: tuple[str, int, int, int], tmp_path: Path, tiny_model: TinyModel) -> None:
    url, *_ = three
    ckpt = tmp_path / "promoted.ckpt"
    shutil.copy(tiny_model.checkpoint, ckpt)
    mid = record(url, str(ckpt), "promoted-then-moved", 0.05)
    promote(url, mid, ["datacube"])
    ckpt.unlink()
    s = Surrogate.from_catalogue(url)
    assert "datacube" not in s.models
    reason = s.status()["datacube"]["reason"]
    assert "promoted for mode 'datacube' cannot be used" in reason
    assert "unpromote --mode datacube" in reason and str(ckpt) not in reason  # no path
    assert s.models["scalar"].info.selected_by == "newest"


def test_select_by_id_name_and_metric(three: tuple[str, int, int, int]) -> None:
    url, good, worse, quick = three
    promote(url, worse)  # a selection at invocation wins over the promotion
    assert ids(Surrogate.from_catalogue(url, choice=ModelChoice.parse(model=str(good)))) == (
        dict.fromkeys(MODEL_MODES, good))
    by_name = Surrogate.from_catalogue(url, choice=ModelChoice.parse(model="quick"))
    assert ids(by_name) == dict.fromkeys(MODEL_MODES, quick)
    assert by_name.models["scalar"].info.selected_by == "chosen: --model quick"
    best = Surrogate.from_catalogue(url, choice=ModelChoice.parse(select="best:val/loss"))
    assert ids(best) == dict.fromkeys(MODEL_MODES, good)
    assert best.models["datacube"].info.selected_by == "min:val/loss = 0.1"
    top = Surrogate.from_catalogue(url, choice=ModelChoice.parse(select="max:val/loss"))
    assert ids(top) == dict.fromkeys(MODEL_MODES, worse)
    none = Surrogate.from_catalogue(url, choice=ModelChoice.parse(select="best:val/mae"))
    assert none.models == {}
    assert "no catalogue model records the metric 'val/mae'" in none.unavailable["datacube"]
    assert "val/loss, val/r2" in none.unavailable["datacube"]
    with pytest.raises(ModelUnavailableError, match="no catalogue model has name 'nope'"):
        Surrogate.from_catalogue(url, choice=ModelChoice.parse(model="nope"))


@pytest.mark.parametrize(("model", "select", "match"), [
    ("1", "newest", "one of them, not both"), (" ", None, "a catalogue model id or name"),
    (None, "best", "best:METRIC"), (None, "median:val/loss", "best:METRIC"),
    (None, "max:", "best:METRIC")])
def test_bad_choices_are_refused(model: str | None, select: str | None, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        ModelChoice.parse(model, select)


def test_models_cli_and_predict_show_the_model(three: tuple[str, int, int, int],
                                              tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    url, good, _, quick = three
    assert run(["models", "promote", str(good), "--mode", "joint"]) == 0
    assert f"model {good} promoted for joint" in capsys.readouterr().out
    assert run(["models", "list"]) == 0
    listing = capsys.readouterr().out
    assert "good" in listing and "quick" in listing and "val/loss=0.1" in listing
    s = Surrogate.from_catalogue(url)
    args = [f"--param={k}={v!r}" for k, v in training_point(s).items()]
    assert run(["predict", *args, "--out", str(tmp_path / "a.nc"), "--mode", "joint"]) == 0
    assert f"model {good} (good; promoted)" in capsys.readouterr().out
    assert run(["predict", *args, "--out", str(tmp_path / "b.nc"), "--mode", "datacube"]) == 0
    assert f"model {quick} (quick; newest)" in capsys.readouterr().out
    assert run(["predict", *args, "--out", str(tmp_path / "c.nc"), "--mode", "joint",
                "--select", "best:val/loss"]) == 0
    assert f"model {good} (good; min:val/loss = 0.1)" in capsys.readouterr().out
    assert run(["models", "unpromote"]) == 0
    assert f"mode joint: model {good} is no longer promoted" in capsys.readouterr().out
    assert run(["models", "promote", "999"]) == 1
    assert "no catalogue model has id 999" in capsys.readouterr().err


def test_promotion_migration_down_and_up(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    assert "model_promotions" in sa.inspect(engine_for(empty_db_url)).get_table_names()
    downgrade(empty_db_url, "0001")
    assert current_revision(empty_db_url) == "0001"
    assert "model_promotions" not in sa.inspect(engine_for(empty_db_url)).get_table_names()
    upgrade(empty_db_url)
    assert "model_promotions" in sa.inspect(engine_for(empty_db_url)).get_table_names()


def training_point(s: Surrogate) -> dict[str, float]:
    spec = s.models["datacube"].task.hparams.data_spec if "datacube" in s.models else (
        next(iter(s.models.values())).task.hparams.data_spec)
    row = spec["params"]["runs"].index(spec["split"]["train"][0])
    return dict(zip(MODEL_INPUT_NAMES_V1, spec["params"]["values"][row], strict=True))


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        exocube_main(argv)
    return int(info.value.code or 0)
