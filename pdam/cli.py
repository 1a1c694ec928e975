"""Operator commands: ``flask --app wsgi <group> <command>``.

The names are part of the product; scripts depend on them. Every command
exits non-zero with a one-line reason on error.
"""

from __future__ import annotations

import datetime as dt
import functools
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from . import billing, db, errors, migrations, partners, tokens

db_cli = AppGroup("db", help="Database schema.")
partner_cli = AppGroup("partner", help="Partners (mitra).")
token_cli = AppGroup("token", help="Partner tokens (JWT).")
bills_cli = AppGroup("bills", help="The billing ledger.")
payment_cli = AppGroup("payment", help="Payments.")
webhook_cli = AppGroup("webhook", help="Webhook callbacks.")
demo_cli = AppGroup("demo", help="Demo data.")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def reports_errors(command):
    """Turn domain errors (and an unreachable database) into a clear message and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except errors.PdamError as exc:
            raise click.ClickException(exc.message) from None
        except Exception as exc:
            if not errors.is_transient(exc):
                raise
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            message = f"database unavailable or too slow, the command did not complete: {reason}"
            raise click.ClickException(message) from None

    return wrapper


def run_in_transaction(fn, *args, **kwargs):
    with db.transaction() as conn:
        return fn(conn, *args, **kwargs)


# -- db ---------------------------------------------------------------------


@db_cli.command("upgrade")
def db_upgrade():
    """Apply sql/ migrations and the queue's schema (safe to run again)."""
    database = db.get_db()
    applied = migrations.upgrade(database.url, database.ledger_url)
    for name in applied:
        click.echo(f"applied {name}")
    click.echo(f"database is up to date ({len(applied)} applied)")


@db_cli.command("url")
def db_url():
    """Print the URL of the database in use (the embedded one if DATABASE_URL is unset)."""
    click.echo(db.get_db().url)


# -- partner ----------------------------------------------------------------


@partner_cli.command("add")
@click.argument("code")
@click.argument("name")
@reports_errors
def partner_add(code, name):
    """Add partner CODE (two digits) named NAME."""
    run_in_transaction(partners.add, code, name)
    click.echo(f"partner {code} {name} added")


@partner_cli.command("deactivate")
@click.argument("code")
@reports_errors
def partner_deactivate(code):
    """Deactivate a partner: all its tokens get 403."""
    run_in_transaction(partners.set_active, code, False)
    click.echo(f"partner {code} deactivated")


@partner_cli.command("activate")
@click.argument("code")
@reports_errors
def partner_activate(code):
    """Re-activate a partner."""
    run_in_transaction(partners.set_active, code, True)
    click.echo(f"partner {code} activated")


@partner_cli.command("list")
@reports_errors
def partner_list():
    """List partners."""
    rows = run_in_transaction(partners.all_partners)
    click.echo(f"{'code':4}  {'name':20}  {'active':6}  {'tokens':6}  created")
    for r in rows:
        click.echo(
            f"{r.code:4}  {r.name:20}  {'yes' if r.active else 'no':6}  {r.live_tokens:6}"
            f"  {r.created_at:%Y-%m-%d %H:%M}"
        )


@partner_cli.command("secret")
@click.argument("code")
@click.option("--rotate", is_flag=True, help="Replace the secret with a new one.")
@reports_errors
def partner_secret(code, rotate):
    """Print (or replace) the partner's webhook signing secret."""
    click.echo(run_in_transaction(partners.secret, code, rotate))


# -- token ------------------------------------------------------------------


@token_cli.command("keygen")
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


def issue_token(code: str, days: int | None = None, until: dt.datetime | None = None) -> str:
    now = utcnow().replace(microsecond=0)
    if until:
        expires = until.replace(tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
    else:
        expires = now + dt.timedelta(days=days or current_app.config["TOKEN_DEFAULT_DAYS"])
    cfg = current_app.config
    with db.transaction() as conn:
        return tokens.issue(
            conn,
            code=code,
            private_key=_private_key(),
            algorithm=cfg["PDAM_JWT_ALGORITHM"],
            issuer=cfg["JWT_ISSUER"],
            now=now,
            expires=expires,
        )


@token_cli.command("issue")
@click.argument("code")
@click.option("--days", type=click.IntRange(min=1), default=None, help="Valid for N days.")
@click.option(
    "--until",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Valid until the end of this date (UTC).",
)
@reports_errors
def token_issue(code, days, until):
    """Print a signed JWT for partner CODE."""
    if days and until:
        raise click.UsageError("give --days or --until, not both")
    click.echo(issue_token(code, days, until))


@token_cli.command("list")
@click.argument("code", required=False)
def token_list(code):
    """List issued tokens (of one partner)."""
    for r in run_in_transaction(tokens.list_tokens, code):
        state = f"revoked {r.revoked_at:%Y-%m-%d %H:%M} ({r.revoke_reason})" if r.revoked_at else (
            "expired" if r.expires_at <= utcnow() else "valid"
        )
        click.echo(f"{r.jti}  {r.partner_code}  issued {r.issued_at:%Y-%m-%d}  expires {r.expires_at:%Y-%m-%d}  {state}")


@token_cli.command("revoke")
@click.argument("token_or_jti")
@click.option("--reason", required=True, help="Why the token is revoked.")
@reports_errors
def token_revoke(token_or_jti, reason):
    """Revoke a token by its jti or by the whole token."""
    jti = run_in_transaction(tokens.revoke, token_or_jti, reason, utcnow())
    click.echo(f"token {jti} revoked")


# -- bills ------------------------------------------------------------------


@bills_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@reports_errors
def bills_import(file):
    """Load customers and unpaid bills from a CSV file, all or nothing."""
    with file.open("rb") as fh:
        total = billing.count_lines(fh)
    with file.open(newline="", encoding="utf-8-sig") as fh:
        with click.progressbar(length=total, label="checking", file=sys.stderr) as bar:
            rows = billing.parse_csv(fh, progress=bar.update)
    with db.ledger_transaction() as conn:
        with click.progressbar(length=len(rows), label="sending ", file=sys.stderr) as bar:
            billing.stage_rows(conn, rows, progress=bar.update)
        click.echo(f"applying {len(rows)} bills to the ledger (one transaction) ...", err=True)
        result = billing.apply_staged(conn, len(rows))
    click.echo(
        f"imported {result.bills} bills of {result.customers} customers"
        f" ({result.inserted} new, {result.updated} updated)"
    )


# -- payment ---------------------------------------------------------------


@payment_cli.command("requeue")
@click.argument("nob")
@reports_errors
def payment_requeue(nob):
    """Re-queue a payment stuck in posting."""
    from . import posting

    job_id = run_in_transaction(posting.requeue, nob)
    click.echo(f"payment {nob} queued for posting (job {job_id})")


# -- webhook ---------------------------------------------------------------


@webhook_cli.command("resend")
@click.argument("nob")
@reports_errors
def webhook_resend(nob):
    """Send a payment's last callback again (same event, body and X-Event-Id)."""
    from . import webhooks

    sent = run_in_transaction(webhooks.resend, nob)
    click.echo(
        f"payment {nob}: last callback ({sent.event}, delivery {sent.resend_of}) queued again"
        f" as delivery {sent.delivery_id} (job {sent.job_id}): a new delivery of the same event,"
        f" same body and X-Event-Id {sent.event_id}"
    )


def init_app(app: Flask) -> None:
    from . import demo

    for group in (db_cli, partner_cli, token_cli, bills_cli, payment_cli, webhook_cli, demo_cli):
        app.cli.add_command(group)
    demo.register(demo_cli)
