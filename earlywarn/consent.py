"""`forget(cfg) -> ForgetResult`: consent withdrawn — delete what the service holds, record which models saw them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from earlywarn.data import state, store
from earlywarn.data.erasure import erase_file, erase_tables
from earlywarn.data.pseudonym import Pseudonymizer
from earlywarn.data.store.keys import list_keys
from earlywarn.training import tracking

REFERENCE = "reference.parquet"


@dataclass(frozen=True)
class ForgetConfig:
    db_url: str
    partner: str
    participant_id: str  # the partner's own id; it is pseudonymised here exactly as the service does
    demo: bool | None = None  # None: EARLYWARN_MODE decides
    not_yet_seen: bool = False  # record the withdrawal even though nothing is held yet (they will never be scored)


@dataclass
class ForgetResult:
    participant_key: str
    predictions_deleted: int
    outcomes_deleted: int
    models_trained_before: list[str]
    files_rewritten: list[Path] = field(default_factory=list)  # retrain snapshots and samples under the state root
    runs_rewritten: list[str] = field(default_factory=list)  # MLflow runs whose reference sample held their rows


class UnknownPartner(LookupError):
    """No key was ever issued to this partner: a typo would otherwise delete nothing and report success."""


class NoRecord(LookupError):
    """Nothing held matches the id: a typo (or another spelling) would record a withdrawal of nobody while the real
    person's data stayed and kept arriving."""


def forget(cfg: ForgetConfig) -> ForgetResult:
    """Delete the participant's logged inputs, predictions, outcomes, escalations and feedback, their rows in retrain
    snapshots under the state root and in every run's reference sample; record the withdrawal with every registered
    model version trained before it (they may have learned from this person) and tag those versions in MLflow.
    Refuses (before deleting anything) a partner the store has never issued a key to, and an HMAC key other than
    the store's (`SecretError`): either would pseudonymise to nobody and report a withdrawal that removed nothing."""
    pseudonymizer = Pseudonymizer.from_env(cfg.demo)
    engine = store.engine_for(cfg.db_url)
    store.check_key(engine, pseudonymizer)
    if cfg.partner not in {k["partner"] for k in list_keys(engine)}:
        raise UnknownPartner(f"no partner {cfg.partner!r} in this store (see `earlywarn keys list`); nothing was deleted")
    key = pseudonymizer(cfg.partner, cfg.participant_id)
    held = store.held_rows(engine, cfg.partner, key)
    tracking.configure()
    versions = tracking.model_versions()
    # Retraining names a logged participant `partner:key`; reference samples name rows by the keyed tag of that id.
    ids = {f"{cfg.partner}:{key}"}
    tags = {pseudonymizer.row_tag(i) for i in ids}
    runs = tracking.rewrite_artifact(REFERENCE, lambda path: erase_file(path, ids, tags))  # any artifact store
    files = erase_tables(state.home(), ids, tags)
    if not (held or runs or files or cfg.not_yet_seen):
        raise NoRecord(
            f"nothing held for that participant of partner {cfg.partner!r} (check the id's spelling); no withdrawal "
            "was recorded. To record one for someone not yet scored, add --not-yet-seen"
        )
    n_pred, n_out = store.forget(engine, cfg.partner, key, versions)
    tracking.count_withdrawal(versions)
    return ForgetResult(key, n_pred, n_out, versions, files, runs)
