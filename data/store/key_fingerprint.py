"""Which HMAC key pseudonymised the store's ids: recorded on first use, a different key refused."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from earlywarn.data.pseudonym import Pseudonymizer, SecretError
from earlywarn.data.store.base import metadata
from earlywarn.data.store.migrate import migrate

store_settings = sa.Table(  # facts about the store itself, e.g. which HMAC key pseudonymised its ids
    "store_settings",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
    sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
)


def check_key(engine: Engine, pseudonymizer: Pseudonymizer) -> None:
    """Record the HMAC key's fingerprint on first use; refuse a different key (its pseudonyms would match nobody,
    so a withdrawal would delete nothing and new records would split people in two)."""
    migrate(engine)
    with engine.begin() as conn:
        stored = conn.execute(
            sa.select(store_settings.c.value).where(store_settings.c.name == "hmac_key_fingerprint")
        ).scalar_one_or_none()
        if stored is None:
            conn.execute(
                sa.insert(store_settings).values(
                    name="hmac_key_fingerprint", value=pseudonymizer.fingerprint, set_at=dt.datetime.now(dt.UTC)
                )
            )
        elif stored != pseudonymizer.fingerprint:
            raise SecretError(
                f"the HMAC key (fingerprint {pseudonymizer.fingerprint}) is not the one this store's ids were "
                f"pseudonymised with (fingerprint {stored}); set EARLYWARN_HMAC_KEY(_FILE) to that key"
            )
