"""``secrets``: the keys that seal secrets at rest (``SECRET_KEYS``), and re-sealing.

Rotation without downtime: add a new key *after* the current one everywhere (every
process opens both, still seals under the old one), then put it first (every process
seals under it), run ``secrets rotate`` (every value under the new key; the old one
still opens what is not yet done), check ``secrets status``, then drop the old key.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from ..infra import sealing
from ..web import runtime
from .common import reports_errors

group = AppGroup("secrets", help="Keys that seal secrets at rest (SECRET_KEYS).")


@group.command("keygen")
@click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the key to this file (SECRET_KEYS_FILE) instead of printing it.",
)
@click.option("--prepend", is_flag=True, help="Keep the file's keys after the new one (rotation).")
def secrets_keygen(path, prepend):
    """Print a new key for SECRET_KEYS (or write it to a key file)."""
    key = sealing.generate_key()
    if path is None:
        click.echo(key)
        return
    old = ""
    if path.exists():
        if not prepend:
            raise click.ClickException(f"{path} exists (use --prepend to add a newer key)")
        old = path.read_text(encoding="ascii")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(f"{key}\n{old}", encoding="ascii")
    click.echo(f"wrote a new key (id {sealing.key_id(key)}) to {path}")


@group.command("rotate")
@reports_errors
def secrets_rotate():
    """Seal every secret under the newest key of SECRET_KEYS (the older keys still open)."""
    sealer = runtime.sealer()
    with runtime.database().engine.connect() as conn:
        done = sealing.reseal(conn, sealer, plaintext_only=False)
    for r in done:
        click.echo(f"{r.column}: {r.values} resealed")
    click.echo(f"every secret is sealed under key id {sealer.newest}")


@group.command("status")
@reports_errors
def secrets_status():
    """Count the sealed values under each key id; say which ids SECRET_KEYS holds."""
    sealer = runtime.sealer()
    with runtime.database().engine.connect() as conn:
        counts = sealing.count_by_key(conn)
    click.echo(f"SECRET_KEYS: {', '.join(sealer.key_ids)} (newest {sealer.newest})")
    for column, by_key in counts.items():
        parts = []
        for kid, n in by_key.items():
            note = (
                "" if kid in sealer.key_ids else (" (not sealed)" if kid == "plaintext" else " (key missing)")
            )
            parts.append(f"{kid} {n}{note}")
        click.echo(f"{column}: {', '.join(parts)}")
