"""BentoML's floor for `make bench`: the bare reference app mounted in a minimal BentoML service (no auth, no log)."""

from __future__ import annotations

import bentoml

from bench.bare import app_for
from earlywarn.data.settings import settings

app = app_for(settings().model_tag)


@bentoml.service(name="earlywarn-floor", workers=1, logging={"access": {"enabled": False}})
@bentoml.asgi_app(app, path="/")
class Floor:
    """Nothing but BentoML's per-request machinery in front of the same scoring as bench/bare.py."""
