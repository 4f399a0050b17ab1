"""`earlywarn models keygen | verify`: the signing key pair, and what vouches for a registered model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Model signing: make a key pair, verify a registered model and its promotion.", no_args_is_help=True)


@app.command("keygen")
def keygen(
    out: Annotated[Path, typer.Option(help="File for the private key (created with mode 600; never overwritten)")],
) -> None:
    """Make an Ed25519 key pair: the private key signs models and promotions (EARLYWARN_SIGNING_KEY_FILE, where
    training and promotion run); the public key it prints verifies them (EARLYWARN_VERIFY_KEYS, everywhere else)."""
    from earlywarn.training.signing import keygen as make

    seed, public, kid = make()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # refuses an existing file: a key is never replaced
    with os.fdopen(fd, "w") as f:
        f.write(seed + "\n")
    typer.echo(f"private key {kid} written to {out} (set EARLYWARN_SIGNING_KEY_FILE={out} where models are signed)")
    typer.echo(f"public key, for EARLYWARN_VERIFY_KEYS:\n{public}")


@app.command("verify")
def verify(version: Annotated[str, typer.Argument(help="A version number or alias")] = "champion") -> None:
    """Check a registered model as packaging would: the signature, the code it ships, and (for the champion) the
    signed promotion record that made it champion. Exits 1 when anything fails."""
    import tempfile

    from earlywarn.training import supply_chain, tracking

    tracking.configure()
    info = tracking.version_info(version)
    if info is None:
        raise LookupError(f"no version or alias {version!r} in '{tracking.REGISTERED_MODEL}'")
    with tempfile.TemporaryDirectory(prefix="earlywarn-verify-") as tmp:
        bundle = supply_chain.check_model_dir(tracking.download_model(info.version, tmp))
    typer.echo(f"version {info.version}: signature and code verified (manifest {bundle.digest[:16]})")
    tagged = tracking.promotion_records()
    if tracking.CHAMPION in info.aliases:
        record = supply_chain.check_champion(info.version, bundle, tagged)
        typer.echo(f"champion by a signed record: {record.action} by {record.by} at {record.at}")
