"""Parallel execution: large `predict` calls spread over worker processes that each hold
the model once and stay alive for later calls."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from clustercls.artifact import load_artifact

if TYPE_CHECKING:
    from clustercls.predict import Model


def usable_cores() -> int:
    """Cores this process may use: its CPU affinity and any container (cgroup) CPU quota
    taken into account, as joblib counts them."""
    import joblib

    return max(1, joblib.cpu_count())


# The models worker processes score with, by model folder. A forked worker finds the
# parent's model here already loaded; a fresh one loads it on its first task.
_WORKER_MODELS: dict[str, Model] = {}


class WorkerPool:
    """Worker processes for one model, started on first use and kept for later calls.

    Where the platform can fork, workers start as copies of this process with the model
    already loaded and verified: nothing is unpickled again, and the pages of the
    libraries and the model stay shared until written. Elsewhere loky starts fresh
    workers that load the model once each.
    """

    def __init__(self, model: Model) -> None:
        self.model = model
        self._executor = None
        self._size = 0

    @property
    def started(self) -> bool:
        return self._executor is not None

    def map_parts(self, parts: list[tuple[list, np.ndarray | None]]) -> list:
        """Start scoring each (titles, flags) part in a worker; returns the futures."""
        executor = self._ensure(len(parts))
        key = str(self.model.artifact.path)
        # The model's class travels with each task (by reference), so this module needs
        # no import of `predict`, which imports it.
        kind = type(self.model)
        return [
            executor.submit(_predict_in_worker, kind, key, values, flags) for values, flags in parts
        ]

    def _ensure(self, workers: int):
        if self._executor is not None and self._size < workers:
            self.shutdown()
        # A larger pool serves a smaller need: call sizes vary, and restarting workers
        # for each size would cost more than an idle one.
        if self._executor is None:
            import multiprocessing

            if "fork" in multiprocessing.get_all_start_methods():
                from concurrent.futures import ProcessPoolExecutor

                # Built before the fork, so the workers share them too.
                self.model.prepare()
                _WORKER_MODELS[str(self.model.artifact.path)] = self.model
                self._executor = ProcessPoolExecutor(
                    workers, mp_context=multiprocessing.get_context("fork")
                )
            else:
                from joblib.externals.loky import get_reusable_executor

                self._executor = get_reusable_executor(max_workers=workers)
            self._size = workers
        return self._executor

    def shutdown(self) -> None:
        """Stop the workers (a later call starts them again)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor, self._size = None, 0
        key = str(self.model.artifact.path)
        if _WORKER_MODELS.get(key) is self.model:
            del _WORKER_MODELS[key]


def _predict_in_worker(
    kind: type[Model], model_dir: str, values: list, flags: np.ndarray | None
) -> pd.DataFrame:
    """Score one part of a large call in a worker process, loading the model once."""
    model = _WORKER_MODELS.get(model_dir)
    if model is None:
        model = _WORKER_MODELS[model_dir] = kind(load_artifact(Path(model_dir)))
    return model._predict_serial(values, flags)
