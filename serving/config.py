"""Service settings, all from the environment (secrets never from the repository)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from earlywarn.data import state, store
from earlywarn.data.settings import secret, settings


@dataclass(frozen=True)
class ServeConfig:
    """Where the prediction log lives, where records spool, and whether this is a demo."""

    db_url: str
    spool_dir: Path
    demo: bool
    fsync: bool
    model_tag: str
    rate_limit: str  # per partner, in the `limits` notation: "250/second", or several: "250/second;5000/minute"
    day_limit: str  # per partner, participant-days scored (a request's cost is its number of days)
    outcome_limit: str  # per partner, outcomes reported
    auth_failure_limit: str  # per client address, failed authentications; beyond it every request is refused
    queue_limit: int  # participants waiting to be scored on this worker; beyond it, 503 with Retry-After
    ops_token: str | None  # bearer token for /metrics and /v1/status (production: required to read them)
    redis_url: str | None = None  # rate limits shared by replicas; None: this replica's own counts
    redis_prefix: str = "earlywarn"

    @classmethod
    def from_env(cls) -> ServeConfig:
        """From the process's settings (data/settings.py; defaults and meanings in docs/configuration.md)."""
        env = settings()
        return cls(
            db_url=store.url_from_env(),
            spool_dir=(env.spool_dir or state.path("spool")).resolve(),
            demo=env.mode == "demo",
            fsync=env.spool_fsync,
            model_tag=env.model_tag,
            rate_limit=env.rate_limit,
            day_limit=env.day_limit,
            outcome_limit=env.outcome_limit,
            auth_failure_limit=env.auth_failure_limit,
            queue_limit=env.queue_limit,
            ops_token=secret(env.ops_token),
            redis_url=secret(env.redis_url),
            redis_prefix=env.redis_prefix,
        )


def bentoml_home() -> Path:
    """BENTOML_HOME, defaulting to bentoml/ under the state root so `make run` writes nothing outside it."""
    return Path(os.environ.get("BENTOML_HOME") or state.path("bentoml")).resolve()


def use_bentoml_home() -> Path:
    """Point this process's BentoML at that store; call before the first `import bentoml`, which reads it once."""
    os.environ.setdefault("BENTOML_HOME", str(bentoml_home()))
    return Path(os.environ["BENTOML_HOME"])
