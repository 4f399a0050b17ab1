"""`make docs-images`: regenerate the small PNGs under docs/images from a seeded synthetic run of the real pipeline."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import tempfile
from pathlib import Path

from PIL import Image

WIDTH = 900  # pixels: small enough to commit, large enough to read


def _shrink(src: Path, dst: Path) -> Path:
    img = Image.open(src).convert("RGB")
    if img.width > WIDTH:
        img = img.resize((WIDTH, round(img.height * WIDTH / img.width)), Image.Resampling.LANCZOS)
    dst.parent.mkdir(parents=True, exist_ok=True)
    img.save(dst, optimize=True)
    return dst


def main(out: Path) -> list[Path]:
    from earlywarn.monitoring.screenshot import chromium

    if chromium() is None:
        raise SystemExit("docs-images needs Chromium for the dashboard screenshot (Debian: apt-get install chromium)")
    root = Path(tempfile.mkdtemp(prefix="earlywarn-docs-images-"))
    os.environ.update(EARLYWARN_HOME=str(root), EARLYWARN_MODE="demo", BENTOML_HOME=str(root / "bentoml"))
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("EARLYWARN_DB_URL", None)
    from bench.launcher import Server
    from earlywarn.data.store import url_from_env
    from earlywarn.data.synth import synth
    from earlywarn.data.synth_course import SynthConfig
    from earlywarn.monitoring.screenshot import dashboard_screenshot
    from earlywarn.monitoring.simulate import SimulateConfig, simulate
    from earlywarn.serving.packaging import import_model
    from earlywarn.training.fit import FitConfig
    from earlywarn.training.promote import PromoteConfig, promote
    from earlywarn.training.train import TrainConfig, train

    cohort = synth(SynthConfig(participants=400, days=240, seed=0), root / "cohort")
    train(
        TrainConfig(cohort.features_path, cohort.outcomes_path, out=root / "train", fit=FitConfig(max_epochs=6, progress=False))
    )
    promote(PromoteConfig())
    written = [
        _shrink(root / "train" / "calibration.png", out / "calibration.png"),
        _shrink(root / "train" / "decision_curve.png", out / "decision-curve.png"),
        _shrink(root / "train" / "trajectories.png", out / "risk-trajectory.png"),
    ]
    env = {"EARLYWARN_MODEL_TAG": import_model().tag, "EARLYWARN_DB_URL": url_from_env()}
    drifted = synth(SynthConfig(participants=300, days=100, seed=31, drift="device-change", drift_start_day=60), root / "drift")
    server = Server(env, root / "server.log").start()
    try:
        simulate(
            SimulateConfig(
                url=server.url,
                db_url=env["EARLYWARN_DB_URL"],
                cohort=drifted.out_dir,
                first_day=dt.date(2025, 1, 1) + dt.timedelta(days=55),
                days=10,
                partners=("clinic-north",),
                out_dir=root / "simulate",
            )
        )
    finally:
        server.stop()
    shot = dashboard_screenshot(root / "simulate" / "workspace", root / "dashboard.png")
    written.append(_shrink(shot.png, out / "drift-dashboard.png"))
    shutil.rmtree(root, ignore_errors=True)
    return written


if __name__ == "__main__":
    for path in main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images")):
        print(f"{path} ({path.stat().st_size // 1024} KB)")
