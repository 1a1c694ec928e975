"""``token``: partner tokens (JWT), signed with the private key only this command holds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from flask_jwt_extended import create_access_token

from ..core import tokens
from ..web import runtime
from ..web.partner_tokens import Signing
from .common import reports_errors, run_in_transaction

group = AppGroup("token", help="Partner tokens (JWT).")


@group.command("keygen")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--algorithm", type=click.Choice(["ES256", "RS256"]), default=None)
@click.option("--force", is_flag=True, help="Overwrite an existing key pair.")
def token_keygen(directory, algorithm, force):
    """Write a new key pair as DIRECTORY/private.pem and DIRECTORY/public.pem."""
    if (directory / "private.pem").exists() and not force:
        raise click.ClickException(f"{directory}/private.pem exists (use --force to replace it)")
    private, public = tokens.keygen(directory, algorithm or current_app.config["PDAM_JWT_ALGORITHM"])
    click.echo(f"wrote {private} and {public}")


def _private_key() -> str:
    path = Path(current_app.config["JWT_PRIVATE_KEY_FILE"])
    if not path.exists():
        raise click.ClickException(f"no private key at {path} (JWT_PRIVATE_KEY_FILE)")
    return path.read_text()


def signer(private_key: str) -> tokens.Signer:
    """Sign a grant with flask-jwt-extended's ``create_access_token`` under the app's pinned
    algorithm and issuer (``pdam.web.partner_tokens``) and ``private_key``."""
    return lambda grant: create_access_token(Signing(grant, private_key))


def issue_token(
    code: str, days: int | None = None, until: dt.datetime | None = None, sandbox: bool = False
) -> str:
    now = runtime.now().replace(microsecond=0)
    if until:
        expires = until.replace(tzinfo=dt.UTC) + dt.timedelta(days=1)
    else:
        expires = now + dt.timedelta(days=days or current_app.config["TOKEN_DEFAULT_DAYS"])
    with runtime.transaction() as conn:
        return tokens.issue(
            conn, code=code, now=now, expires=expires, sign=signer(_private_key()), sandbox=sandbox
        )


@group.command("issue")
@click.argument("code")
@click.option("--days", type=click.IntRange(min=1), default=None, help="Valid for N days.")
@click.option(
    "--until",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Valid until the end of this date (UTC).",
)
@click.option("--sandbox", is_flag=True, help="A sandbox token: the partner's sandbox only, no money moves.")
@reports_errors
def token_issue(code, days, until, sandbox):
    """Print a signed JWT for partner CODE."""
    if days and until:
        raise click.UsageError("give --days or --until, not both")
    click.echo(issue_token(code, days, until, sandbox))


@group.command("list")
@click.argument("code", required=False)
@reports_errors
def token_list(code):
    """List issued tokens (of one partner)."""
    for r in run_in_transaction(tokens.list_tokens, code):
        state = (
            f"revoked {r.revoked_at:%Y-%m-%d %H:%M} ({r.revoke_reason})"
            if r.revoked_at
            else ("expired" if r.expires_at <= runtime.now() else "valid")
        )
        click.echo(
            f"{r.jti}  {r.partner_code}  issued {r.issued_at:%Y-%m-%d}  expires {r.expires_at:%Y-%m-%d}  {state}"
            + ("  sandbox" if r.sandbox else "")
        )


@group.command("revoke")
@click.argument("token_or_jti")
@click.option("--reason", required=True, help="Why the token is revoked.")
@reports_errors
def token_revoke(token_or_jti, reason):
    """Revoke a token by its jti or by the whole token."""
    jti = run_in_transaction(tokens.revoke, token_or_jti, reason, runtime.now())
    click.echo(f"token {jti} revoked")
