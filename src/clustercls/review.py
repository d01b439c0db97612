"""Reviewer workflow: a misclassification report, suspected label errors, and a review
queue whose verdicts flow back into the next dataset build as corrections.

Suspected label errors come from confident learning (Northcutt et al., 2021, the method
behind cleanlab's `find_label_issues`), written out here: from out-of-fold probabilities,
a listing is suspect when the model is confident, by each cluster's own average
self-confidence, that it belongs to a cluster other than its label.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.model_selection import StratifiedGroupKFold

from clustercls.config import FeatureConfig, ModelConfig, stored_config
from clustercls.data import CORRECTION_COLUMNS, DataError
from clustercls.evaluate import (
    classification_metrics,
    decisions_table,
    loso_table,
    plot_block_curves,
)
from clustercls.schema import parse_top_ngrams

if TYPE_CHECKING:
    from clustercls.predict import Model

QUEUE_COLUMNS = (
    "id",
    "title",
    "given_label",
    "predicted",
    "confidence",
    "kind",
    "verdict",
    "corrected_label",
    "reviewer",
    "note",
)
VERDICTS = ("confirm", "relabel", "skip")


# --------------------------------------------------------------------------- confident learning


def find_label_issues(
    labels: np.ndarray, pred_probs: np.ndarray, classes: list[str]
) -> pd.DataFrame:
    """Confident learning: which given labels are probably wrong, most likely first.

    For each class j the threshold t_j is the mean out-of-fold probability of j over the
    examples labelled j. An example "confidently belongs" to every class whose probability
    reaches that class's threshold; it is a suspected label error when the most probable
    of those classes is not its given label. Suspects are ranked by normalised margin:
    how much more probable the suspected class is than the given one.

    Args:
        labels: Given label per example.
        pred_probs: Out-of-fold probabilities, columns in `classes` order.
        classes: Column labels of `pred_probs`.

    Returns:
        One row per suspect: `index` (position in the input), `given_label`,
        `suspected_label`, `p_given`, `p_suspected`, `margin`, sorted by margin, largest
        first.
    """
    labels = np.asarray(labels)
    given = np.array([classes.index(label) for label in labels])
    thresholds = np.array(
        [
            pred_probs[given == j, j].mean() if (given == j).any() else 1.0
            for j in range(len(classes))
        ]
    )
    confident = pred_probs >= thresholds
    masked = np.where(confident, pred_probs, -1.0)
    suspected = masked.argmax(axis=1)
    has_confident = confident.any(axis=1)
    issue = has_confident & (suspected != given)
    rows = np.flatnonzero(issue)
    p_given = pred_probs[rows, given[rows]]
    p_suspected = pred_probs[rows, suspected[rows]]
    out = pd.DataFrame(
        {
            "index": rows,
            "given_label": labels[rows],
            "suspected_label": np.asarray(classes)[suspected[rows]],
            "p_given": p_given,
            "p_suspected": p_suspected,
            "margin": p_suspected - p_given,
        }
    )
    return out.sort_values(["margin", "index"], ascending=[False, True], ignore_index=True)


def _fold_proba(
    train: pd.DataFrame,
    test: pd.DataFrame,
    features: FeatureConfig,
    model: ModelConfig,
    labels: list[str],
) -> np.ndarray:
    from clustercls.fit import fit_pipeline

    fitted = fit_pipeline(train, features, model)
    proba = fitted.predict_proba(test["title"])
    # A fold may miss a cluster; place columns by name.
    out = np.zeros((len(test), len(labels)))
    for j, label in enumerate(fitted.classes_):
        out[:, labels.index(label)] = proba[:, j]
    return out


def out_of_fold_proba(
    dataset: pd.DataFrame,
    features: FeatureConfig,
    model: ModelConfig,
    labels: Sequence[str],
    n_splits: int = 4,
    n_jobs: int = 2,
    seed: int = 0,
) -> np.ndarray:
    """Probabilities for every row from a model that never saw it (or its near-duplicates).

    Args:
        dataset: Rows with `title, cluster, source, dup_group`.
        features: Feature settings of the model under review.
        model: Model settings of the model under review.
        labels: The model's labels: the columns of the result.
        n_splits: Folds; near-duplicate groups stay within one fold.
        n_jobs: Folds fitted in parallel.
        seed: Fold assignment seed.

    Returns:
        Array (rows x clusters) in `labels` order.
    """
    labels = list(labels)
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    folds = list(splitter.split(dataset, dataset["cluster"], dataset["dup_group"]))
    parts = Parallel(n_jobs=n_jobs)(
        delayed(_fold_proba)(dataset.iloc[tr], dataset.iloc[te], features, model, labels)
        for tr, te in folds
    )
    proba = np.zeros((len(dataset), len(labels)))
    for (_, te), part in zip(folds, parts, strict=True):
        proba[te] = part
    return proba


# --------------------------------------------------------------------------- the report


@dataclass
class ReviewResult:
    """Paths and counts of a review run."""

    report: Path
    queue: Path
    counts: dict = field(default_factory=dict)


def _top_words(model: Model, titles: list[str]) -> list[list[str]]:
    """Per title, the word n-grams that pushed it to its predicted cluster, strongest
    first (the `top_ngrams` column: nothing is read back from the reason's prose)."""
    if not titles:
        return []
    return [[g for g, _ in parse_top_ngrams(t)] for t in model.predict(titles)["top_ngrams"]]


def _highlight(title: str, grams: list[str]) -> str:
    """Escape a title and mark the whole words that pushed it to its predicted cluster."""
    words = sorted(
        {g.strip() for g in grams if " " not in g.strip() and len(g.strip()) >= 2},
        key=len,
        reverse=True,
    )
    text = html.escape(title)
    if not words:
        return text
    pattern = re.compile(
        r"\b(" + "|".join(re.escape(html.escape(w)) for w in words) + r")\b", re.IGNORECASE
    )
    return pattern.sub(r"<mark>\1</mark>", text)


def _table(frame: pd.DataFrame, table_id: str, html_columns: tuple[str, ...] = ()) -> str:
    head = "".join(
        f"<th onclick=\"sortTable('{table_id}', {i})\">{html.escape(str(c))}</th>"
        for i, c in enumerate(frame.columns)
    )
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, row, strict=True):
            shown = (
                value
                if column in html_columns
                else html.escape(f"{value:.4f}" if isinstance(value, float) else str(value))
            )
            cells.append(f"<td>{shown}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f"<input class='filter' placeholder='filter…' oninput=\"filterTable('{table_id}', this.value)\">"
        f"<table id='{table_id}'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1300px}
table{border-collapse:collapse;margin:.5em 0 2em;font-size:13px;width:100%}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#eef;cursor:pointer;position:sticky;top:0}
mark{background:#fd6}
.filter{margin:.3em 0;padding:3px;width:20em}
.metric{display:inline-block;margin-right:2em;font-size:18px}
"""

_SCRIPT = """
function sortTable(id, col){
  const t=document.getElementById(id), body=t.tBodies[0], rows=[...body.rows];
  const asc = t.dataset.col==col ? t.dataset.asc!=='true' : true;
  t.dataset.col=col; t.dataset.asc=asc;
  rows.sort((a,b)=>{const x=a.cells[col].innerText, y=b.cells[col].innerText;
    const nx=parseFloat(x), ny=parseFloat(y);
    const c=(!isNaN(nx)&&!isNaN(ny))? nx-ny : x.localeCompare(y); return asc? c : -c;});
  rows.forEach(r=>body.appendChild(r));
}
function filterTable(id, q){
  q=q.toLowerCase();
  for(const r of document.getElementById(id).tBodies[0].rows){
    r.style.display = r.innerText.toLowerCase().includes(q) ? '' : 'none';}
}
"""


def _decisions_section(model_dir: Path, evaluation: dict, model: Model, out_dir: Path) -> str:
    """The enforcement decisions: thresholds, what they achieve out of source and on the
    hand-labelled titles, and precision/recall against the block threshold for both."""
    table = decisions_table(evaluation)
    if table.empty:
        return "<h2>Enforcement decisions</h2><p>No decision measurements in this model.</p>"
    labels = list(model.labels)
    sets = {}
    for name, file in (
        ("out-of-source", "out_of_source_scores.parquet"),
        ("hand-labelled", "hand_labelled_scores.parquet"),
    ):
        if (model_dir / file).is_file():
            scores = pd.read_parquet(model_dir / file)
            sets[name] = (
                scores["cluster"].to_numpy(),
                scores[[f"p_{c}" for c in labels]].to_numpy(),
            )
    thresholds = model.thresholds
    block = ", ".join(f"{html.escape(c)} {t:.4f}" for c, t in thresholds["block"].items())
    parts = [
        "<h2>Enforcement decisions</h2>",
        f"<p>Thresholds chosen on {html.escape(str(thresholds.get('chosen_on', '?')))} "
        f"predictions: block at {block}; review when the protected probability is at least "
        f"{thresholds['review']:.4f}. Block precision counts blocked listings that are "
        "protected; caught counts protected listings blocked or reviewed.</p>",
        _table(table, "decisions"),
    ]
    if sets:
        png = out_dir / "block_curves.png"
        plot_block_curves(sets, labels, thresholds, model.protected, png)
        curves = base64.b64encode(png.read_bytes()).decode()
        png.unlink()
        parts.append(
            "<p>Precision (blue) and recall (orange) against the block threshold; solid "
            "out-of-source, dashed hand-labelled; grey: the chosen threshold.</p>"
            f"<img alt='block threshold curves' src='data:image/png;base64,{curves}'>"
        )
    return "\n".join(parts)


def build_review(
    model_dir: Path,
    dataset: pd.DataFrame,
    out_dir: Path,
    n_splits: int = 4,
    n_jobs: int = 2,
    top: int = 300,
    band: float = 0.05,
) -> ReviewResult:
    """Write the HTML report and the CSV review queue for a model and its dataset.

    Args:
        model_dir: The model under review (its metadata gives its settings and thresholds).
        dataset: The processed dataset it was trained on.
        out_dir: Where `report.html` and `review_queue.csv` go.
        n_splits: Folds for the out-of-fold probabilities.
        n_jobs: Folds fitted in parallel.
        top: Rows per section.
        band: Half-width of the "near threshold" band around each threshold.

    Returns:
        The written paths and how many rows each section holds.
    """
    from clustercls.artifact import read_metadata
    from clustercls.evaluate import plot_confusion
    from clustercls.predict import load_model

    model = load_model(model_dir)
    meta = read_metadata(model_dir)
    stored = stored_config(meta["config"])
    features, model_cfg = stored.features, stored.model
    evaluation = json.loads((Path(model_dir) / "evaluation.json").read_text())
    out_dir.mkdir(parents=True, exist_ok=True)

    # The model's own labels, in its column order: the review judges it by them.
    labels, protected = list(model.labels), list(model.protected)
    data = dataset.reset_index(drop=True)
    oof = out_of_fold_proba(data, features, model_cfg, labels, n_splits=n_splits, n_jobs=n_jobs)
    oof_pred = np.asarray(labels, dtype=object)[oof.argmax(axis=1)]
    oof_conf = oof.max(axis=1)

    issues = find_label_issues(data["cluster"].to_numpy(), oof, labels).head(top)
    suspects = data.iloc[issues["index"]].assign(
        suspected=issues["suspected_label"].to_numpy(),
        p_suspected=issues["p_suspected"].round(4).to_numpy(),
        p_given=issues["p_given"].round(4).to_numpy(),
    )

    wrong = data.assign(predicted=oof_pred, confidence=oof_conf)
    wrong = (
        wrong[wrong["predicted"] != wrong["cluster"]]
        .sort_values("confidence", ascending=False)
        .head(top)
    )
    grams = _top_words(model, wrong["title"].tolist())
    wrong_view = pd.DataFrame(
        {
            "title": [_highlight(t, g) for t, g in zip(wrong["title"], grams, strict=True)],
            "given": wrong["cluster"].to_numpy(),
            "predicted": wrong["predicted"].to_numpy(),
            "confidence": wrong["confidence"].round(4).to_numpy(),
            "source": wrong["source"].to_numpy(),
            "lang": wrong["lang"].to_numpy(),
        }
    )

    near_rows = []
    for cluster, limit in model.thresholds["block"].items():
        hit = (oof_pred == cluster) & (np.abs(oof_conf - limit) <= band)
        near_rows.append(
            data[hit].assign(
                predicted=cluster, confidence=oof_conf[hit].round(4), threshold=f"block {limit:.2f}"
            )
        )
    # Review goes by the total protected probability, whatever the top cluster.
    oof_protected = oof[:, [labels.index(c) for c in protected]].sum(axis=1)
    review_at = model.thresholds["review"]
    hit = np.abs(oof_protected - review_at) <= band
    near_rows.append(
        data[hit].assign(
            predicted=oof_pred[hit],
            confidence=oof_protected[hit].round(4),
            threshold=f"review {review_at:.2f} (protected p)",
        )
    )
    near = pd.concat(near_rows).drop_duplicates("id").head(top) if near_rows else data.head(0)

    per_source = pd.DataFrame(
        [
            {
                "source": s,
                **_slice_metrics(part["cluster"], oof_pred[part.index], labels, protected),
            }
            for s, part in data.groupby("source")
        ]
    )
    loso = loso_table(evaluation)
    oof_metrics = classification_metrics(
        data["cluster"], oof_pred, labels=labels, protected=protected
    )
    per_cluster = pd.DataFrame([{"cluster": c, **m} for c, m in oof_metrics["per_cluster"].items()])
    png = out_dir / "confusion_matrix.png"
    plot_confusion(oof_metrics["confusion_matrix"], labels, png, "out-of-fold, whole dataset")
    image = base64.b64encode(png.read_bytes()).decode()
    png.unlink()
    decisions_html = _decisions_section(Path(model_dir), evaluation, model, out_dir)

    queue = pd.concat(
        [
            pd.DataFrame(
                {
                    "id": wrong["id"],
                    "title": wrong["title"],
                    "given_label": wrong["cluster"],
                    "predicted": wrong["predicted"],
                    "confidence": wrong["confidence"].round(4),
                    "kind": "misclassified",
                }
            ),
            pd.DataFrame(
                {
                    "id": suspects["id"],
                    "title": suspects["title"],
                    "given_label": suspects["cluster"],
                    "predicted": suspects["suspected"],
                    "confidence": suspects["p_suspected"],
                    "kind": "suspected_label_error",
                }
            ),
            pd.DataFrame(
                {
                    "id": near["id"],
                    "title": near["title"],
                    "given_label": near["cluster"],
                    "predicted": near["predicted"],
                    "confidence": near["confidence"],
                    "kind": "near_threshold",
                }
            ),
        ],
        ignore_index=True,
    ).drop_duplicates("id")
    for column in ("verdict", "corrected_label", "reviewer", "note"):
        queue[column] = ""
    queue = queue[list(QUEUE_COLUMNS)]
    queue_path = out_dir / "review_queue.csv"
    queue.to_csv(queue_path, index=False)

    summary = evaluation.get("random_split", {})
    sections = [
        f"<h1>clustercls review: model {html.escape(model.version)}</h1>",
        f"<p>Dataset: {len(data)} titles. Out-of-fold predictions from {n_splits} group-aware folds "
        "(a title is scored by a model that never saw it or its near-duplicates).</p>",
        "<h2>Summary</h2>",
        *[
            f"<span class='metric'>{html.escape(k)}: <b>{v}</b></span>"
            for k, v in {
                "random-split macro-F1": summary.get("macro_f1"),
                "out-of-fold macro-F1": oof_metrics["macro_f1"],
                "protected-vs-other F1 (out-of-fold)": oof_metrics["protected_vs_other"]["f1"],
                "leave-one-source-out mean protected-vs-other F1": evaluation.get(
                    "leave_one_source_out", {}
                ).get("mean_protected_vs_other_f1"),
            }.items()
        ],
        "<h2>Per cluster (out-of-fold)</h2>",
        _table(per_cluster, "clusters"),
        f"<h2>Confusion matrix</h2><img alt='confusion matrix' src='data:image/png;base64,{image}'>",
        "<h2>Leave-one-source-out</h2>",
        _table(loso, "loso"),
        decisions_html,
        f"<h2>Misclassified, most confident first ({len(wrong_view)})</h2>"
        "<p>Highlighted: the words that pushed the title to the predicted cluster.</p>",
        _table(wrong_view, "wrong", html_columns=("title",)),
        f"<h2>Suspected label errors ({len(suspects)})</h2><p>Confident learning on out-of-fold "
        "probabilities, most likely wrong first.</p>",
        _table(
            suspects[
                ["id", "title", "cluster", "suspected", "p_given", "p_suspected", "source"]
            ].rename(columns={"cluster": "given"}),
            "suspects",
        ),
        f"<h2>Near the block and review thresholds (±{band})</h2>",
        _table(
            near[
                ["id", "title", "cluster", "predicted", "confidence", "threshold", "source"]
            ].rename(columns={"cluster": "given"}),
            "near",
        ),
        "<h2>Per source (out-of-fold)</h2>",
        _table(per_source, "sources"),
    ]
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>clustercls review {html.escape(model.version)}</title><style>{_STYLE}</style>"
        f"<script>{_SCRIPT}</script></head><body>{''.join(sections)}</body></html>"
    )
    report_path = out_dir / "report.html"
    report_path.write_text(page, encoding="utf-8")
    counts = {
        "misclassified": len(wrong_view),
        "suspected_label_errors": len(suspects),
        "near_threshold": len(near),
        "queue": len(queue),
    }
    return ReviewResult(report=report_path, queue=queue_path, counts=counts)


def _slice_metrics(
    y_true: pd.Series, y_pred: np.ndarray, labels: list[str], protected: list[str]
) -> dict:
    m = classification_metrics(y_true, y_pred, labels=labels, protected=protected)
    return {
        "n": m["n"],
        "accuracy": m["accuracy"],
        "macro-F1": m["macro_f1"],
        "protected-vs-other F1": m["protected_vs_other"]["f1"],
    }


# --------------------------------------------------------------------------- corrections


@dataclass
class ImportResult:
    """What `import_queue` took and refused."""

    taken: int
    already_present: int
    unreviewed: int
    refused: list[tuple[int, str]]


def import_queue(
    queue_path: Path, corrections_path: Path, clusters: Sequence[str], today: date | None = None
) -> ImportResult:
    """Append a filled review queue's verdicts to the corrections file.

    Rows with no verdict are unreviewed and ignored. A row is refused (with its line and
    why) when its verdict is unknown, a relabel has no policy label, or no reviewer is
    named. A verdict already in the corrections file is not added again, so importing the
    same queue twice changes nothing.

    Args:
        queue_path: The filled `review_queue.csv`.
        corrections_path: `data/corrections.csv`, created with its header if missing.
        clusters: The policy's labels, the only ones a relabel may give (the next data
            build checks the corrections against the same list).
        today: Date recorded on new corrections (default: today).

    Returns:
        Counts of what was taken, skipped and refused.

    Raises:
        DataError: If the queue lacks a column.
    """
    queue = pd.read_csv(queue_path, dtype=str, keep_default_na=False)
    missing = set(QUEUE_COLUMNS) - set(queue.columns)
    if missing:
        raise DataError(f"{queue_path}: missing columns {sorted(missing)}")
    if corrections_path.is_file():
        existing = pd.read_csv(corrections_path, dtype=str, keep_default_na=False)
    else:
        existing = pd.DataFrame(columns=list(CORRECTION_COLUMNS))
    seen = set(
        zip(
            existing["id"],
            existing["verdict"],
            existing["corrected_label"],
            existing["reviewer"],
            strict=True,
        )
    )
    stamp = (today or date.today()).isoformat()
    new_rows, refused, unreviewed, already = [], [], 0, 0
    for line, row in enumerate(queue.itertuples(index=False), start=2):
        verdict = row.verdict.strip().lower()
        if not verdict:
            unreviewed += 1
            continue
        if verdict not in VERDICTS:
            refused.append((line, f"verdict '{row.verdict}' is not one of {', '.join(VERDICTS)}"))
            continue
        corrected = row.corrected_label.strip()
        if verdict == "relabel" and corrected not in clusters:
            refused.append(
                (line, f"relabel needs corrected_label in {', '.join(clusters)}, got '{corrected}'")
            )
            continue
        if verdict != "relabel":
            corrected = ""
        if not row.reviewer.strip():
            refused.append((line, "no reviewer named"))
            continue
        key = (row.id, verdict, corrected, row.reviewer.strip())
        if key in seen:
            already += 1
            continue
        seen.add(key)
        new_rows.append(
            {
                "id": row.id,
                "title": row.title,
                "given_label": row.given_label,
                "verdict": verdict,
                "corrected_label": corrected,
                "reviewer": row.reviewer.strip(),
                "date": stamp,
                "note": row.note,
            }
        )
    if new_rows:
        combined = pd.concat([existing, pd.DataFrame(new_rows)], ignore_index=True)[
            list(CORRECTION_COLUMNS)
        ]
        corrections_path.parent.mkdir(parents=True, exist_ok=True)
        combined.to_csv(corrections_path, index=False)
    return ImportResult(
        taken=len(new_rows), already_present=already, unreviewed=unreviewed, refused=refused
    )
