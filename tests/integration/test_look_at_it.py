"""README "Look at it": the exact commands it prints open MLflow's and Optuna's UIs on the stores a tuning run wrote."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bench.launcher import ROOT, free_port

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def _readme_commands() -> dict[str, str]:
    section = (ROOT / "README.md").read_text().split("## Look at it", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    lines = [line for line in block.splitlines() if line.startswith(".venv/bin/")]
    return {line.split()[0].removeprefix(".venv/bin/"): line for line in lines}


def _serve(command: str, cwd: Path, port: int, ready: str, expect: str) -> None:
    command = re.sub(r"--port \d+", f"--port {port}", command).replace(".venv/bin/", f"{BIN}/")
    proc = subprocess.Popen(
        ["bash", "-c", f"exec {command}"],
        cwd=cwd,
        env=os.environ | {"PWD": str(cwd)},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline, body = time.time() + 120, ""
        while time.time() < deadline and expect not in body:
            assert proc.poll() is None, f"`{command}` exited with {proc.returncode}"
            try:
                body = httpx.get(f"http://127.0.0.1:{port}{ready}", timeout=5).text
            except httpx.HTTPError:
                time.sleep(0.5)
        assert expect in body, f"`{command}`: {ready} never showed {expect!r}: {body[:300]}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_the_readme_commands_open_mlflow_and_optuna_on_our_stores(tmp_path):
    commands = _readme_commands()
    assert {"mlflow", "optuna-dashboard", "earlywarn"} <= set(commands), commands
    env = os.environ | {"EARLYWARN_MODE": "demo"}
    for var in ("EARLYWARN_HOME", "MLFLOW_TRACKING_URI", "EARLYWARN_ARTIFACT_ROOT"):
        env.pop(var, None)  # the README's commands assume the default state root, runs/ in the working directory
    earlywarn = str(BIN / "earlywarn")
    subprocess.run([earlywarn, "data", "synth", "--participants", "60", "--days", "120"], cwd=tmp_path, env=env, check=True)
    tuned = subprocess.run(
        [earlywarn, "tune", "--trials", "2", "--max-epochs", "1", "--no-retrain-best"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert tuned.returncode == 0, tuned.stderr[-2000:]
    _serve(commands["mlflow"], tmp_path, free_port(), "/ajax-api/2.0/mlflow/experiments/search?max_results=10", '"earlywarn"')
    _serve(commands["optuna-dashboard"], tmp_path, free_port(), "/api/studies", '"relapse-risk"')
