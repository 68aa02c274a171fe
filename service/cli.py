"""The ``consent-gate`` command."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from datetime import datetime
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import ScriptInfo, with_appcontext

from service import db


def _echo_json(value: dict[str, Any]) -> None:
    click.echo(json.dumps(value, ensure_ascii=False))


@click.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="The migration to stop at.")
@click.option("--verbose", is_flag=True, help="Log each migration as Alembic applies it.")
@with_appcontext
def db_upgrade(revision: str, verbose: bool) -> None:
    """Create or update the database's tables, then encrypt people's data that earlier versions kept in clear.

    It prints one line, the revision the database is at, and a second one only when it encrypted people's
    data; --verbose adds the log of each migration step. Run it once, before starting the new version's
    instances.
    """
    from sqlalchemy import inspect

    alembic_log = logging.getLogger("alembic")
    if not verbose:
        alembic_log.setLevel(logging.WARNING)  # before importing alembic, which logs as it loads
    try:
        from alembic.util import CommandError

        from service.db.migrate import current_revision, upgrade

        try:
            upgrade(db.engine(), revision)
        except CommandError as exc:  # an unknown or misspelt --revision
            raise click.ClickException(f"cannot upgrade to {revision!r}: {exc}") from exc
        at = current_revision(db.engine())
    finally:
        alembic_log.setLevel(logging.NOTSET)
    click.echo(f"database at head ({at})" if revision == "head" else f"database at {at}")
    # Migration 0007 adds the encrypted columns without DATA_KEY; the app, which has it, fills them.
    if "birth_date_ciphertext" in {column["name"] for column in inspect(db.engine()).get_columns("subjects")}:
        _encrypt_clear_subjects()


def _encrypt_clear_subjects() -> None:
    from service.domain.subjects_at_rest import encrypt_clear_subjects
    from service.keys.data_key import protector

    session = db.session()
    total = 0
    while converted := encrypt_clear_subjects(session, protector=protector()):
        session.commit()
        total += converted
    session.commit()
    if total:
        click.echo(f"encrypted the reference and birth date of {total} people")


@click.group("subjects")
def subjects_group() -> None:
    """People's data at rest."""


@subjects_group.command("encrypt")
@with_appcontext
def subjects_encrypt() -> None:
    """Encrypt references and birth dates still in clear (after running alembic upgrade by hand).

    consent-gate db upgrade does it already; running it again changes nothing.
    """
    from service.domain.subjects_at_rest import count_clear_subjects

    _encrypt_clear_subjects()
    click.echo(f"{count_clear_subjects(db.session())} people left in clear")


@click.group("orgs")
def orgs_group() -> None:
    """Organizations (tenants)."""


@orgs_group.command("create")
@click.argument("name")
@click.option("--contact", required=True, help="How people reach the organization (shown on every page for people).")
@click.option("--json", "as_json", is_flag=True, help='Print {"id"} as JSON.')
@with_appcontext
def orgs_create(name: str, contact: str, as_json: bool) -> None:
    """Create an organization."""
    from service.domain.organizations import create_organization

    session = db.session()
    org = create_organization(session, name=name, contact=contact)
    session.commit()
    if as_json:
        _echo_json({"id": org.id})
    else:
        click.echo(f"organization {org.id} ({org.name})")


@orgs_group.command("list")
@click.option("--json", "as_json", is_flag=True, help='Print [{"id", "name", "contact", "created_at"}] as JSON.')
@with_appcontext
def orgs_list(as_json: bool) -> None:
    """List the organizations, oldest first."""
    from service.domain.organizations import list_organizations

    orgs = list_organizations(db.session())
    if as_json:
        rows = [
            {"id": o.id, "name": o.name, "contact": o.contact, "created_at": o.created_at.isoformat()} for o in orgs
        ]
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    for org in orgs:
        click.echo(f"{org.id}  {org.name}")


@click.group("keys")
def keys_group() -> None:
    """API keys and signing keys."""


@keys_group.command("create")
@click.argument("org_id")
@click.option("--scopes", required=True, help="Comma-separated: admin,consents,verify")
@click.option("--name", default=None, help="What the key is for, shown by `keys list` and GET /v1/keys.")
@click.option("--json", "as_json", is_flag=True, help='Print {"id", "key"} as JSON.')
@with_appcontext
def keys_create(org_id: str, scopes: str, name: str | None, as_json: bool) -> None:
    """Create an API key; the key is printed once and stored only hashed."""
    from service.domain.api_keys import new_api_key
    from service.errors import DomainError

    session = db.session()
    try:  # the API's rules: a valid name (when given), at most MAX_ACTIVE_KEYS active keys
        api_key, secret = new_api_key(
            session, org_id=org_id, actor="cli", name=name, scopes=scopes.split(","), created_by=None
        )
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    session.commit()
    if as_json:
        _echo_json({"id": api_key.id, "key": secret})
    else:
        click.echo(f"key {api_key.id} with scopes {api_key.scopes}:\n{secret}")


@keys_group.command("list")
@click.argument("org_id")
@click.option("--json", "as_json", is_flag=True, help="Print the keys as GET /v1/keys does (without paging).")
@with_appcontext
def keys_list(org_id: str, as_json: bool) -> None:
    """List an organization's API keys, revoked ones included; never a secret."""
    from service.domain.api_keys import list_api_keys, shown_name
    from service.domain.organizations import get_organization
    from service.errors import DomainError

    session = db.session()
    try:
        get_organization(session, org_id)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        found = list_api_keys(session, org_id=org_id, cursor=cursor, limit=1000)
        rows += [
            {
                "id": k.id,
                "name": k.name,
                "prefix": k.prefix,
                "scopes": k.scope_list,
                "created_at": k.created_at.isoformat(),
                "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
                "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
                "created_by": k.creator,
            }
            for k in found.items
        ]
        cursor = found.next_cursor
        if cursor is None:
            break
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
        # The name is the organization's words: shown escaped, so that it can never drive the terminal.
        name = shown_name(row["name"]) if row["name"] else ""
        scopes = ",".join(row["scopes"])
        click.echo(f"{row['id']}  {row['prefix']}…  {scopes}  {state}  by {row['created_by']}  {name}".rstrip())


@keys_group.command("revoke")
@click.argument("key_id")
@with_appcontext
def keys_revoke(key_id: str) -> None:
    """Revoke an API key (any organization's); revoking again changes nothing. Other running instances stop
    accepting it within API_KEY_CACHE_SECONDS."""
    from service.domain.api_keys import revoke_api_key
    from service.errors import DomainError

    session = db.session()
    try:
        api_key = revoke_api_key(session, org_id=None, key_id=key_id, actor="cli")
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    session.commit()
    click.echo(f"key {api_key.id} revoked at {api_key.revoked_at.isoformat() if api_key.revoked_at else '?'}")


@keys_group.command("init-signing")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
def keys_init_signing(path: str) -> None:
    """Create a signing key file for production (SIGNING_KEY_FILE), mode 0600.

    It needs no configuration and no database, and never overwrites a file: to add a key to an existing
    file, use keys rotate-signing. Copy the file to every instance (they must share it), and back it up.
    """
    from service.keys.tokens import create_key_file

    try:
        kid = create_key_file(path)
    except FileExistsError as exc:
        raise click.ClickException(
            f"{path} already exists: it is left as it is (keys rotate-signing adds a new key to it)"
        ) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot create {path}: {exc.strerror or exc}") from exc
    click.echo(f"wrote a new ES256 signing key ({kid}) to {path}, mode 0600")
    click.echo(f"set CONSENT_GATE_SIGNING_KEY_FILE={os.path.abspath(path)} on every instance", err=True)


@keys_group.command("init-data-key")
def keys_init_data_key() -> None:
    """Print a new DATA_KEY: 32 random bytes, base64-encoded.

    Set it as CONSENT_GATE_DATA_KEY on every instance, and keep a copy with the backups: without it
    people's references, birth dates and phone numbers cannot be read. It needs no configuration.
    """
    from service.keys.crypto import generate_data_key

    click.echo(generate_data_key())


@keys_group.command("rotate-signing")
@with_appcontext
def keys_rotate_signing() -> None:
    """Start signing new tokens with a new key; tokens signed before keep verifying until they expire."""
    from service.keys.signing import keyring, rotate_key_file

    keys = rotate_key_file(current_app.config["SIGNING_KEY_FILE"])
    keyring().reload()
    click.echo(f"signing with {keys.kid}; {len(keys.public_keys) - 1} previous key(s) still verify")


@keys_group.command("retire-signing")
@click.argument("kid")
@with_appcontext
def keys_retire_signing(kid: str) -> None:
    """Stop trusting a previous signing key, once no live consent can hold a token it signed.

    Tokens are signed on demand with the current key, so a token signed by KID belongs to a consent that
    existed before KID stopped signing. While one of those is still active and unexpired, this refuses
    (exit 1) and says when it will be safe.
    """
    from sqlalchemy import func, select

    from service.domain.statuses import ConsentStatus
    from service.keys.signing import keyring, retire_key, stopped_signing
    from service.models import Consent, utcnow

    path = current_app.config["SIGNING_KEY_FILE"]
    keys = keyring().reload()
    if kid not in keys.public_keys:
        raise click.ClickException(f"no key {kid} in {path}")
    if kid == keys.kid:
        raise click.ClickException("the current signing key cannot be retired: rotate first (keys rotate-signing)")
    stopped = stopped_signing(path).get(kid)
    if stopped is None:
        raise click.ClickException(f"no record of when {kid} stopped signing: it was not rotated out by this tool")
    session = db.session()
    count, last = session.execute(
        select(func.count(), func.max(Consent.expires_at)).where(
            Consent.status == ConsentStatus.ACTIVE,
            Consent.created_at < datetime.fromisoformat(stopped),
            Consent.expires_at > utcnow(),
        )
    ).one()
    if count:
        raise click.ClickException(
            f"{count} active consent(s) may still hold tokens signed by {kid}; "
            f"retire it after {last.isoformat() if last else stopped}"
        )
    remaining = retire_key(path, kid)
    keyring().reload()
    click.echo(f"retired {kid}; {len(remaining.public_keys)} key(s) remain, {remaining.kid} signs")


@click.group("audit")
def audit_group() -> None:
    """The audit trail."""


@audit_group.command("verify")
@with_appcontext
def audit_verify() -> None:
    """Check every organization's hash chain and signed checkpoints; exit 1 at the first break."""
    from service.domain.audit_records import verify_records
    from service.keys.signing import key_set

    breaks = verify_records(db.session(), key_set())
    if breaks:
        for found in breaks:
            click.echo(f"BROKEN {found}", err=True)
        sys.exit(1)
    click.echo("audit trail intact")


@audit_group.command("checkpoint")
@with_appcontext
def audit_checkpoint() -> None:
    """Sign the head of every organization's chain with the token key and store it."""
    from service.domain.audit_records import create_checkpoints
    from service.keys.signing import key_set

    session = db.session()
    made = create_checkpoints(session, key_set())
    session.commit()
    for checkpoint in made:
        click.echo(f"checkpoint {checkpoint.org_id} seq {checkpoint.seq} {checkpoint.hash}")


@audit_group.command("export")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="Only events from this day or moment (UTC) on.",
)
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--org", "org_id", default=None, help="One organization's id; all of them by default.")
@with_appcontext
def audit_export(since: Any, fmt: str, org_id: str | None) -> None:
    """Write the audit trail (records of processing) to standard output as JSON lines or CSV."""
    from service.domain.audit_records import export_events
    from service.domain.organizations import get_organization

    if org_id is not None:
        get_organization(db.session(), org_id)  # an unknown one is an error, not an empty export
    for chunk in export_events(db.session(), org_id=org_id, since=since, fmt=fmt):
        click.echo(chunk, nl=False)


@click.command("sweep")
@with_appcontext
def sweep() -> None:
    """End consents and guardian requests past their time, each with its audit event; run it from cron.

    Run it every 5 minutes (see the README's "Production"). It also records the face-data deletions owed
    and those now overdue (as deletion.overdue events), clears the phone lookups kept for erased
    guardians' SMS allowance, and records each organization's count of people with an active consent for
    the day, which tells when the filing threshold was crossed. Outbox rows settled more than
    OUTBOX_KEEP_DAYS ago (their bodies long erased) are deleted.
    """
    from service.domain.consent_lifecycle import expire_overdue
    from service.domain.deletions import owe_late_allows, record_overdue
    from service.domain.filing_counts import china_today, record_all_daily_counts
    from service.domain.guardian import expire_overdue_requests
    from service.domain.guardian.messages import forget_phone_lookups

    session = db.session()
    totals = {"consents": 0, "guardian requests": 0}
    for name, step in (("consents", expire_overdue), ("guardian requests", expire_overdue_requests)):
        while True:
            ended = step(session)
            session.commit()
            totals[name] += ended
            if ended == 0:
                break
    forget_phone_lookups(session)
    session.commit()
    # After the expiries: they owe deletions too. Then the allows that raced an end, then what is overdue.
    hours = current_app.config["DELETION_HOURS"]
    owed = owe_late_allows(session, hours=hours)
    session.commit()
    overdue = 0
    while True:
        recorded = record_overdue(session, hours=hours)
        session.commit()
        overdue += recorded
        if recorded == 0:
            break
    record_all_daily_counts(session, day=china_today())
    session.commit()
    click.echo(f"expired {totals['consents']} consents, {totals['guardian requests']} guardian requests")
    click.echo(f"deletions: {owed} owed for allows recorded after their consent ended, {overdue} now overdue")
    from service.outbox import prune_settled

    pruned = prune_settled(session, keep_days=current_app.config["OUTBOX_KEEP_DAYS"])
    click.echo(f"outbox: {pruned} settled messages older than {current_app.config['OUTBOX_KEEP_DAYS']} days deleted")


@click.command("report")
@click.option("--org", "org_id", default=None, help="One organization's id; all of them by default.")
@click.option("--link", is_flag=True, help="Print a signed link that opens the organization's HTML report.")
@click.option(
    "--hours",
    type=click.IntRange(1, 720),
    default=None,
    help="With --link: how long the link opens the report, 1 to 720 hours.  [default: 72]",
)
@click.option(
    "--lang",
    type=click.Choice(["zh-CN", "en"]),
    default=None,
    help="With --link: the language the page opens in (zh-CN when not given; the page can switch).",
)
@with_appcontext
def report(org_id: str | None, link: bool, hours: int | None, lang: str | None) -> None:
    """Print the compliance report of each organization as JSON (filing status, assessments, devices).

    filing.status is not_required, due, overdue or filed; computing the report records the day's count of
    people with an active consent.

    With --link, print instead a signed URL (on PUBLIC_URL) that opens one organization's HTML report in a
    browser, without an API key, for --hours; each link is recorded in that organization's audit trail.
    --org may be left out when there is only one organization.
    """
    from sqlalchemy import select

    from service.domain.filing import parse_dates
    from service.domain.reports import compliance_report
    from service.models import Organization

    session = db.session()
    config = current_app.config
    if not link and (hours is not None or lang is not None):
        raise click.UsageError("--hours and --lang go with --link")
    ids = [org_id] if org_id else list(session.scalars(select(Organization.id).order_by(Organization.created_at)))
    for one in ids:
        if session.get(Organization, one) is None:
            raise click.ClickException(f"organization {one} does not exist")
    if link:
        if len(ids) != 1:
            raise click.UsageError(f"--link opens one organization's report: name it with --org ({len(ids)} exist)")
        _print_report_link(ids[0], hours or 72, lang)
        return
    for one in ids:
        found = compliance_report(
            session,
            org_id=one,
            threshold=config["FILING_THRESHOLD"],
            holidays=parse_dates(config["FILING_HOLIDAYS"]),
            extra_workdays=parse_dates(config["FILING_EXTRA_WORKDAYS"]),
            deletion_hours=config["DELETION_HOURS"],
        )
        session.commit()  # the day's count of people (R12), recorded while computing it
        click.echo(json.dumps(found, ensure_ascii=False, default=str))


def _print_report_link(org_id: str, hours: int, lang: str | None) -> None:
    from service.domain.report_links import issue_report_link
    from service.keys.signing import issuer, key_set

    session = db.session()
    issued = issue_report_link(
        session,
        org_id=org_id,
        actor="cli",
        hours=hours,
        keys=key_set(),
        issuer=issuer(),
        public_url=current_app.config["PUBLIC_URL"],
        locale=lang,
    )
    session.commit()  # the link is recorded in the audit trail before anyone can hold it
    click.echo(issued.url)
    click.echo(f"expires {issued.expires_at.isoformat()}", err=True)


@click.command("serve")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="The address to listen on (0.0.0.0 behind a proxy)."
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1), help="Worker processes.")
@click.option(
    "--threads", default=1, show_default=True, type=click.IntRange(min=1), help="Threads per worker (gthread when > 1)."
)
@click.option(
    "--no-dispatch",
    is_flag=True,
    help="Do not send the outbox (SMS, webhooks) from the workers: run `consent-gate dispatch` apart.",
)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, threads: int, no_dispatch: bool) -> None:
    """Serve the API with gunicorn (a production WSGI server).

    It refuses a database never migrated or behind this version (run consent-gate db upgrade first). In
    development, links point to the host and port served unless PUBLIC_URL is set, and the address is
    recorded in the instance folder (served-url) for the other commands' links. Each worker also runs an
    outbox dispatcher thread (SMS, webhooks) unless --no-dispatch.
    """
    from service.config import record_served_url
    from service.server import run_gunicorn

    served: dict[str, Any] = {}
    if current_app:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    else:
        info = ctx.ensure_object(ScriptInfo)
        if isinstance(info, AppLoader):
            served = served_settings(host, port)
            info.overrides.update(served)
        app = info.load_app()
    # The app has been built once here already: configuration is valid and the signing key exists
    # before any worker starts.
    problem = schema_problem(app.extensions["consent_gate.engine"])
    if problem:
        raise click.ClickException(problem)
    if served:
        record_served_url(app.instance_path, app.config["PUBLIC_URL"])
    run_gunicorn(
        host=host, port=port, workers=workers, threads=threads, config=dict(app.config), dispatch=not no_dispatch
    )


@click.command("dispatch")
@click.option("--once", is_flag=True, help="Send what is due now and exit (for cron, and tests).")
@with_appcontext
def dispatch(once: bool) -> None:
    """Send the outbox (SMS, webhook deliveries) after the commits that wrote it.

    Runs until stopped (SIGINT, SIGTERM); any number may run at once, on any instances: each claims the
    messages it sends. `serve` runs one in each worker already, unless --no-dispatch. Each runs two
    threads: one for SMS, one for webhook deliveries and jobs, so that neither holds up the other.
    """
    import signal

    from service.outbox.dispatcher import Dispatcher, start_dispatcher

    if once:
        click.echo(f"attempted {Dispatcher.of(current_app).drain()} message(s)")
        return
    threads, stop = start_dispatcher(current_app)  # one thread per lane: SMS; webhooks and jobs
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    click.echo("dispatching the outbox; stop with Ctrl-C", err=True)
    while not stop.wait(1.0):
        pass
    for thread in threads:
        thread.join(timeout=30)  # each finishes its send and lets go of the rows it still holds


def schema_problem(engine: Any) -> str | None:
    """Why the app cannot serve this database's schema, if it cannot: never migrated, or behind this version.

    A database this version does not know the revision of (migrated by a newer version) is served; an
    unreachable one too, for ``/readyz`` to report until it answers.
    """
    from sqlalchemy.exc import OperationalError

    alembic_log = logging.getLogger("alembic")
    alembic_log.setLevel(logging.WARNING)  # before importing alembic, which logs as it loads
    try:
        from alembic.script import ScriptDirectory
        from alembic.util import CommandError

        from service.db.migrate import current_revision, migrations_folder

        try:
            at = current_revision(engine)
        except OperationalError as exc:
            click.echo(f"warning: the database is unavailable for now: {exc.orig or exc}", err=True)
            return None
        script = ScriptDirectory(migrations_folder())
        head = script.get_current_head()
    finally:
        alembic_log.setLevel(logging.NOTSET)
    if at == head:
        return None
    if at == "base":
        return "the database has no tables yet: run `consent-gate db upgrade` first"
    try:
        script.get_revision(at)
    except CommandError:  # newer than this version: its own instances migrated it
        return None
    return f"the database is at revision {at}, this version needs {head}: run `consent-gate db upgrade` first"


def served_settings(host: str, port: int) -> dict[str, Any]:
    """In development without ``PUBLIC_URL``, guardians' links point to the address served."""
    from service.config import from_environment

    settings = from_environment()
    if settings["ENV"] == "production" or settings["PUBLIC_URL"]:
        return {}
    shown = "127.0.0.1" if host in {"", "0.0.0.0", "::"} else host  # noqa: S104 (compared, not bound)
    return {"PUBLIC_URL": f"http://{f'[{shown}]' if ':' in shown else shown}:{port}"}


COMMANDS = (db_group, orgs_group, keys_group, subjects_group, audit_group, sweep, report, serve, dispatch)


def init_app(app: Flask) -> None:
    """Also offer the commands on ``app.cli`` (``flask --app service``, and the tests' CLI runner)."""
    for command in COMMANDS:
        app.cli.add_command(command)


class AppLoader(ScriptInfo):
    """Builds the app the first time a command needs it: ``--help`` and ``--version`` need no database."""

    def __init__(self) -> None:
        super().__init__(create_app=self._create_app, set_debug_flag=False, load_dotenv_defaults=False)
        #: Settings that win over the environment (``serve`` sets the development PUBLIC_URL).
        self.overrides: dict[str, Any] = {}

    def _create_app(self) -> Flask:
        from service import create_app

        return create_app(dict(self.overrides))


class ConfigRefused(click.ClickException):
    """The configuration is refused: exit 2, like a usage error, with the reasons and no traceback."""

    exit_code = 2


class ConsentGateGroup(click.Group):
    """Our commands only; a rule saying no or a refused setting ends with a message, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError

        from service.config import ConfigError
        from service.errors import DomainError
        from service.keys.crypto import DataKeyError
        from service.keys.signing import UnsafeSigningKey

        try:
            return super().invoke(ctx)
        except DomainError as exc:
            raise click.ClickException(exc.message) from exc
        except (ConfigError, DataKeyError, UnsafeSigningKey) as exc:
            raise ConfigRefused(str(exc)) from exc
        except ArgumentError as exc:
            raise ConfigRefused(f"CONSENT_GATE_DATABASE_URL: {exc}") from exc
        except (OperationalError, ProgrammingError) as exc:
            missing = missing_table(exc)
            if missing:
                raise click.ClickException(
                    f"the database has no table {missing}: run `consent-gate db upgrade` first"
                ) from exc
            if isinstance(exc, ProgrammingError):
                raise
            raise click.ClickException(f"the database is unavailable: {exc.orig or exc}") from exc


def missing_table(error: Exception) -> str | None:
    """The table a statement failed for lack of (a database never migrated, or behind), if that is why."""
    orig = getattr(error, "orig", None)
    text = str(orig or error).splitlines()[0] if str(orig or error) else ""
    if getattr(orig, "sqlstate", None) == "42P01":  # PostgreSQL: undefined_table
        quoted = text.split('"')
        return quoted[1] if len(quoted) > 2 else "it needs"
    if text.startswith("no such table: "):  # SQLite
        return text.removeprefix("no such table: ")
    return None


def _version() -> str:
    from service import __version__

    return __version__


@click.group(
    "consent-gate",
    cls=ConsentGateGroup,
    help="Consent Gate: consent and guardian authorization for facial recognition.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(_version(), "--version", prog_name="consent-gate", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context) -> None:
    # Commands run in an app context (``with_appcontext``), built from the environment on first use.
    if not isinstance(ctx.obj, ScriptInfo):
        ctx.obj = AppLoader()


@click.group("openapi")
def openapi_group() -> None:
    """The API's OpenAPI document."""


@openapi_group.command("write")
@click.option("--format", "fmt", type=click.Choice(["json"]), default="json", show_default=True)
@click.argument("output_file", type=click.File("w", encoding="utf-8"))
@with_appcontext
def openapi_write(fmt: str, output_file: Any) -> None:
    """Write the OpenAPI document, as /openapi.json serves it, to OUTPUT_FILE (- for standard output).

    make openapi writes the committed copy, openapi/openapi.json, with it.
    """
    from flask import json as flask_json

    spec = current_app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
    click.echo(flask_json.dumps(spec, indent=2, sort_keys=False), file=output_file)


for _command in (*COMMANDS, openapi_group):
    cli.add_command(_command)


#: prometheus_client's files in ``PROMETHEUS_MULTIPROC_DIR``: counters, gauges, histograms, one per process.
METRICS_FILES = ("counter_*.db", "gauge_*.db", "histogram_*.db", "summary_*.db")


def metrics_folder() -> str | None:
    """Prepare ``PROMETHEUS_MULTIPROC_DIR`` for ``serve``; the folder to remove when the server stops, if ours.

    gunicorn's workers add up their metrics through files in that folder; it must be set before
    prometheus_client is first imported, so before the app is built. Unset, a private temporary folder is
    made, and removed when the server stops. Set by the operator, it is theirs, for this instance alone:
    the files prometheus_client left there by an earlier run are deleted (their counts would be added
    to this run's), and nothing else.
    """
    import glob

    chosen = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not chosen:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="consent-gate-metrics-")
        return os.environ["PROMETHEUS_MULTIPROC_DIR"]
    for pattern in METRICS_FILES:
        for left in glob.glob(os.path.join(glob.escape(chosen), pattern)):
            if os.path.isfile(left) and not os.path.islink(left):
                os.remove(left)
    return None


def main() -> None:
    """The ``consent-gate`` entry point."""
    args = sys.argv[1:]
    ours = metrics_folder() if args[:1] == ["serve"] else None
    master = os.getpid()
    try:
        cli.main(args=args, prog_name="consent-gate", obj=AppLoader())
    finally:
        # gunicorn's workers are forks of this process, and leave through here too: only the master,
        # once the server has stopped, removes the folder.
        if ours and os.getpid() == master:
            shutil.rmtree(ours, ignore_errors=True)
