"""Notebooks: committed without outputs, and they run top to bottom on small data."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_the_two_notebooks_exist() -> None:
    assert [p.name for p in NOTEBOOKS] == ["1.0-data-exploration.ipynb", "2.0-error-analysis.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} has outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, tiny_model_dir: Path, monkeypatch) -> None:
    root = tiny_model_dir.parents[1]
    monkeypatch.setenv("CLUSTERCLS_DATASET", str(root / "processed" / "dataset.parquet"))
    monkeypatch.setenv("CLUSTERCLS_MODEL", str(tiny_model_dir))
    monkeypatch.setenv("CLUSTERCLS_HAND_LABELLED", str(root / "hand.csv"))
    monkeypatch.setenv("CLUSTERCLS_SHARED", str(root / "shared-absent"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": str(REPO / "notebooks")}},
    ).execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any(o.output_type in ("execute_result", "display_data") for o in outputs)
