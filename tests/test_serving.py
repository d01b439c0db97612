"""The registered pyfunc answers over HTTP with `mlflow models serve` on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from clustercls.config import TrackingConfig, TrainConfig


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post(url: str, payload: object) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.fixture
def served_model(tiny_model_dir: Path, tmp_path: Path):
    """Register the tiny model in a scratch MLflow store and serve it; stop it after."""
    from clustercls.tracking import log_training_run

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = TrainConfig(tracking=TrackingConfig(tracking_uri=uri))
    evaluation = json.loads((tiny_model_dir / "evaluation.json").read_text())
    logged = log_training_run(config, tiny_model_dir, evaluation, {"random_macro_f1": 1.0})
    port = _free_port()
    mlflow_cli = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    # The server execs `uvicorn` by name: put this environment's scripts first on PATH.
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": uri,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    server = subprocess.Popen(
        [
            mlflow_cli,
            "models",
            "serve",
            "-m",
            f"models:/clustercls/{logged.registered_version}",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"server exited: {server.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base}/ping", timeout=2):
                break
        except OSError:
            time.sleep(0.5)
    else:
        os.killpg(server.pid, signal.SIGTERM)
        pytest.fail("server did not answer /ping within 120 s")
    yield base
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)


def test_http_round_trip(served_model: str) -> None:
    titles = ["Kopi Asli Bali", "", "Kemeja Premium Jogja"]
    status, body = _post(
        f"{served_model}/invocations",
        {"dataframe_records": [{"title": t, "is_cross_border": True} for t in titles]},
    )
    assert status == 200, body
    rows = body["predictions"]
    assert [r["cluster"] for r in rows] == ["food_beverage", "other", "fashion_textile"]
    assert [r["status"] for r in rows] == ["ok", "empty_title", "ok"]
    assert {"confidence", "decision", "reason", "p_craft"} <= set(rows[0])


def test_bad_request_gets_a_clear_error(served_model: str) -> None:
    status, body = _post(f"{served_model}/invocations", {"dataframe_records": [{"name": "Kopi"}]})
    assert status in (400, 422, 500)
    assert "title" in json.dumps(body)
    status, body = _post(f"{served_model}/invocations", {"not_a_format": 1})
    assert 400 <= status < 500
    assert body.get("message") or body.get("error_code")
