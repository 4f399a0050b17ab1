"""Render the monitoring dashboard in headless Chromium: a PNG for people, the page text for checks."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from earlywarn.monitoring.evidently_io import PANEL_TITLES, PROJECT


@dataclass
class Screenshot:
    png: Path
    url: str
    panels_shown: list[str]
    panels_missing: list[str]


def chromium() -> str | None:
    return next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dashboard_screenshot(workspace: Path, out_png: Path, scope: str = "all", timeout: float = 60) -> Screenshot:
    """Start `evidently ui` on loopback over the workspace, load the scope's dashboard, save a PNG, list the panels seen."""
    browser = chromium()
    if browser is None:
        raise RuntimeError("no Chromium found (Debian: apt-get install chromium)")
    port = _free_port()
    exe = str(Path(sys.executable).with_name("evidently"))
    env = os.environ | {"DO_NOT_TRACK": "true"}
    ui = subprocess.Popen(
        [exe, "ui", "--workspace", str(workspace), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        projects = None
        deadline = time.monotonic() + timeout
        while projects is None:
            try:
                projects = httpx.get(f"{base}/api/projects", timeout=5).json()
            except httpx.HTTPError:
                if time.monotonic() > deadline or ui.poll() is not None:
                    raise RuntimeError(f"evidently ui did not start on port {port}") from None
                time.sleep(0.5)
        project = next((p for p in projects if p["name"] == f"{PROJECT} — {scope}"), None)
        if project is None:
            raise LookupError(f"no dashboard for scope {scope!r} in {workspace}")
        url = f"{base}/projects/{project['id']}"
        flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=20000"]
        out_png.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [browser, *flags, "--window-size=1600,2600", f"--screenshot={out_png}", url],
            capture_output=True,
            timeout=timeout,
            check=True,
        )
        dom = subprocess.run([browser, *flags, "--dump-dom", url], capture_output=True, timeout=timeout, check=True).stdout
        text = dom.decode(errors="replace")
        shown = [t for t in PANEL_TITLES if t in text]
        return Screenshot(out_png, url, shown, [t for t in PANEL_TITLES if t not in shown])
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=30)
