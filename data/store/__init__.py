"""The service's operational store (SQLAlchemy; SQLite by default, PostgreSQL by URL): one module per concept, each
owning its tables and queries, and Alembic migrations. Serving writes it; monitoring, training and the CLI read it.

The names below are the store's interface: `from earlywarn.data import store`, then `store.read_predictions(...)`."""

from earlywarn.data.store import audit
from earlywarn.data.store.base import engine_for, metadata, url_from_env
from earlywarn.data.store.escalations import (
    ACTED_ON,
    alert_feedback,
    alert_participant,
    escalation_changes,
    latest_episodes,
    read_alerts,
)
from earlywarn.data.store.key_fingerprint import check_key, store_settings
from earlywarn.data.store.keys import api_keys
from earlywarn.data.store.migrate import MigrateResult, head, migrate
from earlywarn.data.store.outcomes import latest_events, outcomes, read_outcomes
from earlywarn.data.store.partner_modes import LIVE, SILENT, ModeChange, current_mode, mode_history, record_mode, silent_partners
from earlywarn.data.store.predictions import (
    count_predictions,
    first_scored,
    predictions,
    read_inputs,
    read_predictions,
    scored_days,
)
from earlywarn.data.store.records import TABLES, count, existing_ids, insert_ignoring_duplicates, purge, retention_days
from earlywarn.data.store.retraining_consent import allow_retraining, deny_retraining, retraining_partners
from earlywarn.data.store.webhooks import read_deliveries, webhook_deliveries, webhooks
from earlywarn.data.store.withdrawals import forget, held_rows, read_withdrawals, withdrawals, withdrawn

__all__ = [
    "ACTED_ON",
    "LIVE",
    "SILENT",
    "TABLES",
    "MigrateResult",
    "ModeChange",
    "alert_feedback",
    "alert_participant",
    "allow_retraining",
    "api_keys",
    "audit",
    "check_key",
    "count",
    "count_predictions",
    "current_mode",
    "deny_retraining",
    "engine_for",
    "escalation_changes",
    "existing_ids",
    "first_scored",
    "forget",
    "head",
    "held_rows",
    "insert_ignoring_duplicates",
    "latest_episodes",
    "latest_events",
    "metadata",
    "migrate",
    "mode_history",
    "outcomes",
    "predictions",
    "purge",
    "read_alerts",
    "read_deliveries",
    "read_inputs",
    "read_outcomes",
    "read_predictions",
    "read_withdrawals",
    "record_mode",
    "retention_days",
    "retraining_partners",
    "scored_days",
    "silent_partners",
    "store_settings",
    "url_from_env",
    "webhook_deliveries",
    "webhooks",
    "withdrawals",
    "withdrawn",
]
