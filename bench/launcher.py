"""Start a real BentoML server process on a free loopback port (integration tests, benchmarks, drills)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _family(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


class Server:
    """`bentoml serve serving.service:RiskService` on a free loopback port, with the given environment; `target` and
    `bentoml` serve a built bento with another environment's BentoML instead, started in `cwd`."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        target: str = "earlywarn.serving.service:RiskService",
        bentoml: Path | None = None,
        cwd: Path = ROOT,
    ):
        self.target, self.cwd = target, cwd
        self.bentoml = str(bentoml or Path(sys.executable).with_name("bentoml"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = os.environ | env | {"BENTOML_DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> Server:
        self._log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [self.bentoml, "serve", self.target, "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=self.cwd,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"server not ready: {self.log_path.read_text()[-3000:]}")

    def stop(self, sig: int = 15, grace: float = 30) -> None:
        """Signal the server and every process it started (workers may sit outside its process group); whatever
        is still alive after `grace` seconds is killed, so no worker outlives the server."""
        if self.proc is None:
            return
        family = _family(self.proc.pid)
        for p in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.send_signal(sig)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        _, alive = psutil.wait_procs(family, timeout=grace)
        for p in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        psutil.wait_procs(alive, timeout=10)
        self.proc.wait(timeout=10)
        self._log.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")
