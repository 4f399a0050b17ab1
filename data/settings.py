"""Every EARLYWARN_ setting in one typed object read from the environment; secrets also from a NAME_FILE."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from earlywarn.data.episodes import Rules

PREFIX = "EARLYWARN_"
SECRETS = (
    "hmac_key",
    "hmac_key_previous",
    "signing_key",
    "db_url",
    "ops_token",
    "redis_url",
)  # each also read from the file that <NAME>_FILE names

STRONG = ("hmac_key", "hmac_key_previous", "ops_token")  # secrets someone could guess: their estimated strength is checked
MIN_SECRET_BITS = 80  # a heuristic floor that catches weak choices; docs/security.md says how to make a 256-bit one
MODEL_NAME = "relapse-risk"  # the registered model, its BentoML copies and the tuning study: named once, here


class SettingsError(ValueError):
    """A setting has a value it cannot take; the message names the variable (never a secret's value)."""


class Settings(BaseSettings):
    """The process's settings. Bad values fail when the process starts, naming the variable."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, env_ignore_empty=True, extra="ignore")

    mode: Literal["production", "demo"] = Field(
        default="production", description="`production` (a real secret is required) or `demo`; any other spelling is refused"
    )
    home: Path = Field(default=Path("runs"), description="State root: MLflow and BentoML stores, prediction log, spool, reports")
    hmac_key: SecretStr | None = Field(
        default=None,
        description="Secret for participant pseudonyms (at least 80 bits of estimated strength; required in production)",
    )
    hmac_key_file: Path | None = Field(default=None, description="File holding EARLYWARN_HMAC_KEY (instead of the variable)")
    hmac_key_previous: SecretStr | None = Field(
        default=None, description="The pseudonymisation secret being rotated away from; only `earlywarn store rekey` reads it"
    )
    hmac_key_previous_file: Path | None = Field(default=None, description="File holding EARLYWARN_HMAC_KEY_PREVIOUS")
    signing_key: SecretStr | None = Field(
        default=None,
        description="Ed25519 private key that signs models and promotion records (`earlywarn models keygen`); only where "
        "training and promotion run; demo mode uses a published demo key",
    )
    signing_key_file: Path | None = Field(default=None, description="File holding EARLYWARN_SIGNING_KEY")
    verify_keys: str | None = Field(
        default=None,
        description="Public keys (comma-separated) whose signatures models and promotion records may carry; the "
        "signing key's own is added; list old and new while rotating",
    )
    db_url: SecretStr | None = Field(
        default=None,
        description="Prediction log and key store (SQLAlchemy URL); default SQLite `earlywarn.db` under the state root",
    )
    db_url_file: Path | None = Field(default=None, description="File holding EARLYWARN_DB_URL (a URL with a password)")
    ops_token: SecretStr | None = Field(
        default=None, description="Bearer token for `/metrics` and `/v1/status`; without it they answer 403 in production"
    )
    ops_token_file: Path | None = Field(default=None, description="File holding EARLYWARN_OPS_TOKEN")
    redis_url: SecretStr | None = Field(
        default=None,
        description="Redis for rate limits shared by every replica (`redis://host:6379/0`); unset: each replica counts alone",
    )
    redis_url_file: Path | None = Field(default=None, description="File holding EARLYWARN_REDIS_URL (a URL with a password)")
    redis_prefix: str = Field(
        default="earlywarn", description="Key prefix in Redis: deployments sharing one Redis each use their own"
    )
    spool_dir: Path | None = Field(
        default=None, description="Local spool of records not yet in the store; default `spool/` under the state root"
    )
    spool_fsync: bool = Field(
        default=False, description="fsync each spool write (survives power loss; costs throughput); true or false"
    )
    model_tag: str = Field(default=f"{MODEL_NAME}:latest", description="BentoML model the service loads")
    rate_limit: str = Field(default="250/second", description="Requests per partner (`limits` notation; several joined by `;`)")
    day_limit: str = Field(default="90000/second;1000000/minute", description="Participant-days scored per partner")
    outcome_limit: str = Field(default="10000/minute;200000/day", description="Outcomes reported per partner")
    auth_failure_limit: str = Field(
        default="20/minute", description="Failed authentications per client address and key id (a valid key is never refused)"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="The service's JSON log lines at this level and above (an access line per request)"
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses (or CIDR ranges) of reverse proxies whose X-Forwarded-For is believed; "
        "none by default, so a client cannot choose its own address",
    )
    queue_limit: int = Field(default=20000, gt=0, description="Participants waiting to be scored per worker; beyond it 503")
    retention_days: int = Field(default=400, ge=1, description="Days predictions, inputs and outcomes are kept")
    escalation_close_after: int = Field(default=7, ge=1, description="Days without a high score that close an episode")
    escalation_snooze_days: int = Field(default=7, ge=0, description="Days care-team feedback quiets an episode")
    escalation_in_care_days: int = Field(default=28, ge=0, description="Days `already_in_care` feedback quiets an episode")
    escalation_remind_after: int = Field(default=2, ge=1, description="Days after which an unanswered escalation is reminded")
    escalation_rise_factor: float = Field(
        default=2.0, gt=1, description="Risk multiple over the last notified that notifies again"
    )
    escalation_lost_contact_days: int = Field(
        default=14, ge=0, description="Days after an episode closes in which going stale is still lost contact"
    )
    artifact_root: Path | None = Field(
        default=None, description="MLflow artifact folder; default `mlflow/artifacts` under the state root"
    )
    debug: bool = Field(default=False, description="CLI errors with their traceback")

    @property
    def demo(self) -> bool:
        return self.mode == "demo"

    def escalation_rules(self) -> Rules:
        return Rules(
            close_after=self.escalation_close_after,
            snooze_days=self.escalation_snooze_days,
            in_care_days=self.escalation_in_care_days,
            remind_after=self.escalation_remind_after,
            rise_factor=self.escalation_rise_factor,
            lost_contact_days=self.escalation_lost_contact_days,
        )

    @property
    def verify_key_list(self) -> list[str]:
        return [k.strip() for k in (self.verify_keys or "").split(",") if k.strip()]

    def spool_path(self) -> Path:
        """Where records spool: EARLYWARN_SPOOL_DIR, else `spool/` under the state root (absolute)."""
        return (self.spool_dir or self.home / "spool").resolve()

    @field_validator("rate_limit", "day_limit", "outcome_limit", "auth_failure_limit")
    @classmethod
    def _limits(cls, value: str) -> str:
        import limits

        try:
            limits.parse_many(value)
        except ValueError:
            raise ValueError("use the `limits` notation, e.g. 250/second or 250/second;5000/minute") from None
        return value

    @model_validator(mode="after")
    def _secret_files(self) -> Settings:
        for name in SECRETS:
            path = getattr(self, f"{name}_file")
            if path is None:
                continue
            if getattr(self, name) is not None:
                raise ValueError(f"{var(name)} and {var(name)}_FILE are both set; use one")
            try:
                text = path.read_text().strip()
            except OSError as err:
                raise ValueError(f"{var(name)}_FILE={str(path)!r}: {err.strerror}") from None
            if not text:
                raise ValueError(f"{var(name)}_FILE={str(path)!r}: the file is empty")
            if sys.platform != "win32" and path.stat().st_mode & 0o077:
                raise ValueError(f"{var(name)}_FILE={str(path)!r}: readable by group or others; chmod 600 it")
            setattr(self, name, SecretStr(text))
        for name in STRONG:
            value = secret(getattr(self, name))
            weak = value is not None and estimated_bits(value) < MIN_SECRET_BITS
            if weak and not (name == "hmac_key" and self.mode == "demo"):  # the demo secret is published anyway
                raise ValueError(
                    f"{var(name)} is too weak to guard health data (about {estimated_bits(value or ''):.0f} bits, at least "
                    f"{MIN_SECRET_BITS} needed); make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
                )
        return self


def estimated_bits(value: str) -> float:
    """A guessing-strength estimate: the smaller of the string's Shannon entropy (repeats count little) and its length
    times the bits of the character classes it uses (a long run of one class counts no more than that class allows)."""
    from collections import Counter

    counts = Counter(value)
    shannon = -sum(c / len(value) * math.log2(c / len(value)) for c in counts.values()) * len(value) if value else 0.0
    classes = [str.islower, str.isupper, str.isdigit]
    alphabet = sum(n for test, n in zip(classes, (26, 26, 10), strict=True) if any(test(ch) for ch in value))
    alphabet += 33 if any(not ch.isalnum() for ch in value) else 0
    return min(shannon, len(value) * math.log2(max(alphabet, 2)))


def var(field: str) -> str:
    return PREFIX + field.upper()


def settings() -> Settings:
    """The environment's settings now (the CLI and the service read them once at start, so bad values stop them)."""
    try:
        return Settings()
    except ValidationError as err:
        raise SettingsError("; ".join(_explain(e) for e in err.errors())) from None


def _explain(error: Any) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    message = str(error["msg"]).removeprefix("Value error, ")
    if not field:  # a whole-object check: its message names the variables
        return message
    shown = "" if field in SECRETS else f"={error['input']!r}"
    return f"{var(field)}{shown}: {message}"


def secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def markdown_table() -> str:
    """The table docs/configuration.md carries (a test keeps the two in step)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, info in Settings.model_fields.items():
        shown = str(info.default).lower() if isinstance(info.default, bool) else info.default
        default = "" if shown is None else f"`{shown}`"
        rows.append(f"| `{var(name)}` | {default} | {info.description} |")
    return "\n".join(rows)


if __name__ == "__main__":  # python -m data.settings docs/configuration.md: rewrite the table there
    doc = Path(sys.argv[1])
    text = doc.read_text()
    start, end = text.index("<!-- settings -->") + len("<!-- settings -->"), text.index("<!-- /settings -->")
    doc.write_text(text[:start] + "\n" + markdown_table() + "\n" + text[end:])
