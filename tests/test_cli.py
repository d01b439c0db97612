"""The command line end to end on tiny data, in a scratch project folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from clustercls.cli import EXIT_DATA, EXIT_MODEL, EXIT_NOT_PROMOTED, EXIT_USAGE, app
from tests.conftest import REPO, reset_compiled_parts

runner = CliRunner()


@pytest.fixture
def project(tmp_path, tiny_sources, tiny_hand_labelled, monkeypatch) -> Path:
    """A scratch project: the repo's data/ config, tiny sources, local MLflow store."""
    root = tmp_path / "project"
    shutil.copytree(REPO / "data", root / "data", ignore=shutil.ignore_patterns("processed"))
    monkeypatch.chdir(root)
    monkeypatch.setenv("CLUSTERCLS_SOURCES", str(tiny_sources))
    monkeypatch.setenv("CLUSTERCLS_SHARED", str(tmp_path / "no-shared"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    (root / "hand.csv").write_bytes(Path(tiny_hand_labelled).read_bytes())
    return root


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_help_documents_exit_codes() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for code in ("3  data or input error", "4  model error"):
        assert code in result.output


def test_build_train_evaluate_predict_promote(project: Path) -> None:
    built = invoke("data", "build", "--hand-labelled", "hand.csv")
    assert built.exit_code == 0, built.output
    assert (project / "data/processed/dataset.parquet").is_file()
    assert json.loads((project / "data/processed/data_report.json").read_text())["rows_kept"] > 100

    trained = invoke("train", "--no-loso")
    assert trained.exit_code == 0, trained.output
    model_dir = Path(trained.stdout.strip().splitlines()[-1])
    assert (project / model_dir / "metadata.json").is_file()
    assert "registered clustercls version 1" in trained.output

    evaluated = invoke("evaluate", "--hand-labelled", "hand.csv")
    assert evaluated.exit_code == 0
    assert "random split" in evaluated.output
    # The project's policy probes are scored by default, both parts.
    assert "policy probes, dev" in evaluated.output
    assert "policy probes, held" in evaluated.output

    listings = pd.DataFrame(
        {"sku": ["a", "b", "c"], "title": ["Kopi Asli Bali", "", "Kemeja Premium Jogja"]}
    )
    listings.to_csv(project / "listings.csv", index=False)
    scored = invoke("predict", "--input", "listings.csv", "--output", "out/scored.parquet")
    assert scored.exit_code == 0, scored.output
    out = pd.read_parquet(project / "out/scored.parquet")
    assert out["sku"].tolist() == ["a", "b", "c"]
    assert out["status"].tolist() == ["ok", "empty_title", "ok"]
    summary = json.loads((project / "out/scored.parquet.summary.json").read_text())
    assert summary["rows_out"] == 3 and summary["statuses"] == {"empty_title": 1, "ok": 2}
    assert "3 rows in, 3 out" in scored.output

    promoted = invoke("promote", "--hand-labelled", "hand.csv")
    assert promoted.exit_code == 0, promoted.output
    assert "promoted version 1" in promoted.output
    again = invoke("promote", "--hand-labelled", "hand.csv")
    assert again.exit_code == EXIT_NOT_PROMOTED
    assert "already the champion" in again.output

    from_registry = invoke(
        "predict",
        "--input",
        "listings.csv",
        "--output",
        "reg.csv",
        "--model",
        "models:/clustercls@champion",
    )
    assert from_registry.exit_code == 0, from_registry.output
    assert pd.read_csv(project / "reg.csv")["cluster"].tolist() == out["cluster"].tolist()


def test_promotion_refused_when_not_better(project: Path) -> None:
    assert invoke("data", "build", "--hand-labelled", "hand.csv").exit_code == 0
    assert invoke("train", "--no-loso").exit_code == 0
    assert invoke("promote", "--hand-labelled", "hand.csv").exit_code == 0
    # An identical retrain cannot beat the champion: it scores the same.
    assert invoke("train", "--no-loso").exit_code == 0
    result = invoke("promote", "--hand-labelled", "hand.csv")
    assert result.exit_code == EXIT_NOT_PROMOTED
    assert "does not beat" in result.output and "(+0.0000)" in result.output


def test_data_error_is_one_line_with_exit_code(project: Path, tiny_sources: Path) -> None:
    (tiny_sources / "unknown_market.csv").write_text("title,category\nX,Y\n")
    result = invoke("data", "build")
    assert result.exit_code == EXIT_DATA
    assert result.output.strip().startswith("error: ")
    assert "unknown_market.csv: unknown source file" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_train_options_reach_the_stored_config(project: Path) -> None:
    assert invoke("data", "build", "--hand-labelled", "hand.csv").exit_code == 0
    trained = invoke("train", "--no-loso", "--no-tracking", "--word-dropout", "0", "--C", "0.3")
    assert trained.exit_code == 0, trained.output
    model_dir = project / trained.stdout.strip().splitlines()[-1]
    stored = json.loads((model_dir / "metadata.json").read_text())["config"]["model"]
    assert stored["word_dropout"] == 0 and stored["C"] == 0.3
    assert (
        invoke("train", "--word-dropout", "1.5", "--no-loso", "--no-tracking").exit_code
        == EXIT_USAGE
    )


def test_invalid_setting_is_a_usage_error(project: Path) -> None:
    result = runner.invoke(app, ["train", "--calibration", "bogus", "--no-loso", "--no-tracking"])
    assert result.exit_code == EXIT_USAGE
    assert "invalid setting model.calibration" in result.output
    assert "Traceback" not in result.output
    assert not (project / "models").exists() or not any((project / "models").iterdir())


def test_predict_writes_a_summary_and_prints_its_headline(
    project: Path, tiny_model_dir: Path
) -> None:
    titles = ["Kopi Asli Bali", "", "Zorvex KT-4471 Vanta", "Kemeja Premium Jogja"]
    pd.DataFrame({"title": titles}).to_csv(project / "in.csv", index=False)
    result = invoke("predict", "-i", "in.csv", "-o", "out.csv", "--model", str(tiny_model_dir))
    assert result.exit_code == 0, result.output
    summary = json.loads((project / "out.csv.summary.json").read_text())
    assert summary["rows_in"] == summary["rows_out"] == 4
    assert summary["unfamiliar_share"] == round(1 / 3, 4)
    assert "4 rows in, 4 out" in result.stderr
    assert "unfamiliar titles: 33.3%" in result.stderr
    assert "cluster shift from training" in result.stderr  # training records a reference
    assert result.stdout.strip() == "out.csv"

    elsewhere = invoke(
        "predict",
        "-i",
        "in.csv",
        "-o",
        "again.csv",
        "--model",
        str(tiny_model_dir),
        "--summary",
        "reports/run.json",
    )
    assert elsewhere.exit_code == 0, elsewhere.output
    assert json.loads((project / "reports/run.json").read_text())["output"] == "again.csv"
    assert not (project / "again.csv.summary.json").exists()


def test_predict_fatal_errors(project: Path, tiny_model_dir: Path) -> None:
    (project / "bad.csv").write_text("name\nKopi\n")
    result = invoke("predict", "-i", "bad.csv", "-o", "out.csv", "--model", str(tiny_model_dir))
    assert result.exit_code == EXIT_DATA
    assert "no 'title' column" in result.output
    assert not (project / "out.csv").exists()
    assert not (project / "out.csv.summary.json").exists()

    tampered = shutil.copytree(tiny_model_dir, project / "tampered")
    with (tampered / "model.joblib").open("ab") as fh:
        fh.write(b"!")
    (project / "ok.csv").write_text("title\nKopi\n")
    result = invoke("predict", "-i", "ok.csv", "-o", "out.csv", "--model", str(tampered))
    assert result.exit_code == EXIT_MODEL
    assert "checksum mismatch" in result.output
    assert not (project / "out.csv").exists()

    result = invoke("predict", "-i", "ok.csv", "-o", "out.csv")
    assert result.exit_code == EXIT_MODEL
    assert "no trained model found" in result.output


def test_review_fill_import_rebuild(project: Path) -> None:
    assert invoke("data", "build", "--hand-labelled", "hand.csv").exit_code == 0
    assert invoke("train", "--no-loso", "--no-tracking").exit_code == 0
    reviewed = invoke("review", "--out", "rev", "--folds", "3")
    assert reviewed.exit_code == 0, reviewed.output
    assert (project / "rev/report.html").is_file()

    queue = pd.read_csv(project / "rev/review_queue.csv", dtype=str, keep_default_na=False)
    dataset = pd.read_parquet(project / "data/processed/dataset.parquet").set_index("id")
    target = dataset.index[0] if queue.empty else queue["id"].iloc[0]
    if queue.empty or target not in queue["id"].values:
        queue = pd.DataFrame(
            [{c: "" for c in queue.columns} | {"id": target, "title": dataset.loc[target, "title"]}]
        )
    given = dataset.loc[target, "cluster"]
    new_label = next(c for c in ("craft", "other") if c != given)
    queue.loc[queue["id"] == target, ["verdict", "corrected_label", "reviewer", "note"]] = [
        "relabel",
        new_label,
        "rina",
        "checked",
    ]
    queue.to_csv(project / "filled.csv", index=False)

    first = invoke("review", "import", "filled.csv")
    assert first.exit_code == 0 and "took 1" in first.output, first.output
    assert invoke("data", "build", "--hand-labelled", "hand.csv").exit_code == 0
    rebuilt = pd.read_parquet(project / "data/processed/dataset.parquet").set_index("id")
    assert rebuilt.loc[target, "cluster"] == new_label
    report = json.loads((project / "data/processed/data_report.json").read_text())
    assert report["corrections"]["relabelled"] == 1

    before = (project / "data/corrections.csv").read_bytes()
    second = invoke("review", "import", "filled.csv")
    assert second.exit_code == 0 and "took 0" in second.output
    assert (project / "data/corrections.csv").read_bytes() == before


@pytest.mark.parametrize(("args", "expected"), [((), None), (("--jobs", "1"), 1)])
def test_predict_jobs_reach_the_model(
    project: Path, tiny_model_dir: Path, monkeypatch, args, expected
) -> None:
    import clustercls.predict as predict_module

    asked = []
    real = predict_module.load_model

    def spy(path_or_uri=None, n_jobs=None):
        asked.append(n_jobs)
        return real(path_or_uri, n_jobs=1)

    monkeypatch.setattr(predict_module, "load_model", spy)
    (project / "ok.csv").write_text("title\nKopi\n")
    result = invoke(
        "predict", "-i", "ok.csv", "-o", "out.csv", "--model", str(tiny_model_dir), *args
    )
    assert result.exit_code == 0
    # None: the library's own default, every usable core.
    assert asked == [expected]


@pytest.mark.parametrize("pure", [False, True])
def test_predict_reports_the_compiled_parts(
    project: Path, tiny_model_dir: Path, monkeypatch, pure: bool
) -> None:
    from clustercls import text
    from clustercls.predict import compiled_parts

    reset_compiled_parts()
    if pure:
        monkeypatch.setenv(text.PURE_PYTHON_ENV, "1")
    elif not all(compiled_parts().values()):
        pytest.skip("the compiled parts are not built")
    try:
        (project / "ok.csv").write_text("title\nKopi\n")
        result = invoke("predict", "-i", "ok.csv", "-o", "out.csv", "--model", str(tiny_model_dir))
        assert result.exit_code == 0, result.output
        expected = (
            "none (pure Python"
            if pure
            else "compiled parts: normaliser, char n-grams, token lookup"
        )
        assert expected in result.output
    finally:
        monkeypatch.delenv(text.PURE_PYTHON_ENV, raising=False)
        reset_compiled_parts()


def test_train_takes_its_settings_from_a_config_file(project: Path) -> None:
    assert invoke("data", "build", "--hand-labelled", "hand.csv").exit_code == 0
    (project / "train.toml").write_text(
        "[model]\nC = 0.7\n[evaluation]\nleave_one_source_out = false\n"
        "[tracking]\nenabled = false\n"
    )

    def trained_config(*options: str) -> dict:
        result = invoke("train", "--config", "train.toml", *options)
        assert result.exit_code == 0, result.output
        model_dir = Path(result.stdout.strip().splitlines()[-1])
        return json.loads((project / model_dir / "metadata.json").read_text())["config"]

    from_file = trained_config()
    assert from_file["model"]["C"] == 0.7
    assert from_file["evaluation"]["leave_one_source_out"] is False
    assert from_file["tracking"]["enabled"] is False
    # A command-line option wins over the file.
    assert trained_config("--C", "0.3")["model"]["C"] == 0.3
