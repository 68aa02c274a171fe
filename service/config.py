"""Configuration: embedded defaults, overridden by ``CONSENT_GATE_*`` environment variables."""

from __future__ import annotations

import os
from typing import Any

PREFIX = "CONSENT_GATE_"

#: ``production`` (the default) refuses to start on development defaults (``production_problems``);
#: ``development`` (``make run``) and ``test`` generate what is missing in the instance folder.
ENVIRONMENTS = ("production", "development", "test")
#: The base of guardians' links in development when ``PUBLIC_URL`` is not set and nothing is served
#: (``consent-gate serve`` uses the host and port it serves instead).
DEVELOPMENT_PUBLIC_URL = "http://127.0.0.1:8000"

#: Where ``consent-gate serve`` records, in development, the address it serves (in the instance folder):
#: the other commands, run meanwhile without ``PUBLIC_URL``, make their links on it too.
SERVED_URL_FILE = "served-url"
#: The shortest ``METRICS_TOKEN`` production accepts (it guards every organization's counts).
METRICS_TOKEN_MIN_LENGTH = 32
METRICS_TOKEN_COMMAND = "openssl rand -hex 32"  # noqa: S105 (a command that makes one, not a token)
#: A shell command that prints a ``DATA_KEY`` (standard base64 is read like the URL-safe kind).
DATA_KEY_COMMAND = "openssl rand -base64 32"
#: The settings that are flask-limiter rate limits ("1200/minute", "10/second;1000/hour").
RATE_LIMIT_SETTINGS = (
    "RATE_LIMIT_API",
    "RATE_LIMIT_VERIFY",
    "RATE_LIMIT_PUBLIC",
    "RATE_LIMIT_GUARDIAN",
    "RATE_LIMIT_PEOPLE",
)

#: The SMS providers (``SMS_PROVIDER``); see ``service.sms``.
SMS_PROVIDERS = ("console", "twilio", "aliyun", "tencent")
#: The kinds of SMS sent (``service.sms.TEMPLATE_PARAMETERS`` gives each one's template parameters).
SMS_KINDS = ("link", "reconsent", "code", "withdrawal", "access")


def sms_template_setting(provider: str, kind: str) -> str:
    """The setting naming the registered template of ``kind`` at ``provider``: ``ALIYUN_SMS_TEMPLATE_LINK``."""
    return f"{provider.upper()}_SMS_TEMPLATE_{kind.upper()}"


#: What each provider cannot send without (besides its optional region and base URL).
SMS_PROVIDER_SETTINGS: dict[str, tuple[str, ...]] = {
    "console": (),
    "twilio": ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM"),
    "aliyun": (
        "ALIYUN_ACCESS_KEY_ID",
        "ALIYUN_ACCESS_KEY_SECRET",
        "ALIYUN_SMS_SIGN_NAME",
        *(sms_template_setting("aliyun", kind) for kind in SMS_KINDS),
    ),
    "tencent": (
        "TENCENT_SECRET_ID",
        "TENCENT_SECRET_KEY",
        "TENCENT_SMS_SDK_APP_ID",
        "TENCENT_SMS_SIGN_NAME",
        *(sms_template_setting("tencent", kind) for kind in SMS_KINDS),
    ),
}


def missing_sms_settings(settings: dict[str, Any]) -> list[str]:
    """The settings ``SMS_PROVIDER`` needs that are not set, without the prefix."""
    needed = SMS_PROVIDER_SETTINGS.get(settings.get("SMS_PROVIDER") or "", ())
    return [name for name in needed if not settings.get(name)]


#: Every setting, with its embedded default. ``None`` means "derived at start-up".
DEFAULTS: dict[str, Any] = {
    "ENV": "production",
    "INSTANCE_PATH": None,
    "DATABASE_URL": None,
    "PUBLIC_URL": None,
    "ISSUER": None,
    "SMS_PROVIDER": "console",
    "SMS_OUTBOX": None,
    "TWILIO_ACCOUNT_SID": None,
    "TWILIO_AUTH_TOKEN": None,
    "TWILIO_FROM": None,
    "TWILIO_BASE_URL": None,
    #: Alibaba Cloud SMS (``SMS_PROVIDER=aliyun``): an AccessKey, the registered signature, a template a kind.
    "ALIYUN_ACCESS_KEY_ID": None,
    "ALIYUN_ACCESS_KEY_SECRET": None,
    "ALIYUN_SMS_SIGN_NAME": None,
    **{sms_template_setting("aliyun", kind): None for kind in SMS_KINDS},
    #: Another address for its API (a proxy, a test's fake); the default is https://dysmsapi.aliyuncs.com.
    "ALIYUN_SMS_BASE_URL": None,
    #: Tencent Cloud SMS (``SMS_PROVIDER=tencent``): a SecretId/SecretKey, the SMS application's SdkAppId,
    #: the registered signature, a template a kind.
    "TENCENT_SECRET_ID": None,
    "TENCENT_SECRET_KEY": None,
    "TENCENT_SMS_SDK_APP_ID": None,
    "TENCENT_SMS_SIGN_NAME": None,
    **{sms_template_setting("tencent", kind): None for kind in SMS_KINDS},
    "TENCENT_SMS_REGION": "ap-guangzhou",
    #: Another address for its API (a proxy, a test's fake); the default is https://sms.tencentcloudapi.com.
    "TENCENT_SMS_BASE_URL": None,
    "SIGNING_KEY_FILE": None,
    "DATA_KEY": None,
    "REDIS_URL": None,
    "GUARDIAN_AGE": 14,
    "ASSESSMENT_VALID_DAYS": 365,
    "FILING_THRESHOLD": 100000,
    "PROHIBIT_SENSITIVE_ANALYSIS": True,
    "MAX_CONTENT_LENGTH": 64 * 1024,
    "BATCH_MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
    "PAGE_SIZE_MAX": 1000,
    "SQL_ECHO": False,
    "DB_TIMEOUT_MS": 10000,
    "VERIFICATION_SYNCHRONOUS_COMMIT": "off",
    #: Threads serving requests in each process (``consent-gate serve --threads`` sets it for its workers).
    "WORKER_THREADS": 1,
    #: Connections each process's pool keeps open; ``None``: derived from WORKER_THREADS (see pool_size).
    "DB_POOL_SIZE": None,
    #: Tries of one SMS within one dispatcher attempt (Twilio); the outbox retries with its own backoff.
    "SMS_RETRY_ATTEMPTS": 1,
    "SMS_RETRY_BACKOFF": 0.5,
    #: The outbox (SMS, webhooks): attempts before a message is dead (``failed``), the first retry's delay
    #: (doubling after each attempt), how often an idle dispatcher looks for work.
    "OUTBOX_MAX_ATTEMPTS": 8,
    "OUTBOX_BACKOFF_SECONDS": 2.0,
    "OUTBOX_POLL_SECONDS": 1.0,
    #: Days a settled outbox row (its body erased: what was sent, when, how it went) is kept; the sweep
    #: deletes older ones. The webhook deliveries log shows this long.
    "OUTBOX_KEEP_DAYS": 30,
    #: Webhook deliveries retry on their own, longer schedule (a receiver down for a deploy or a night must
    #: not lose events): the delays, in seconds, after each failed attempt; one attempt more than delays.
    #: The default is Standard Webhooks' suggestion: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (about 27 h).
    "WEBHOOK_RETRY_SECONDS": "5,300,1800,7200,18000,36000,36000",
    #: Jobs (the asking of guardians after a material notice change) too: a database away for a while must
    #: not end the asking of those left.
    "JOB_RETRY_SECONDS": "60,300,1800,7200,18000,36000,36000",
    #: Seconds a webhook receiver has to answer.
    "WEBHOOK_TIMEOUT_SECONDS": 5.0,
    "GUARDIAN_REQUEST_HOURS": 72,
    "GUARDIAN_POLL_INTERVAL": 5,
    #: Hours a link to a person's own page (``POST /v1/subjects/{id}/access-link``) stays valid.
    "ACCESS_LINK_HOURS": 72,
    #: Days after a guardian declined a purpose before the organization may ask again for that child and
    #: purpose (PIPL 16, Measures Art. 12: no repeated asking after a refusal). 0 lets it ask again at once.
    "REASK_AFTER_DAYS": 30,
    #: Hours after a consent ended within which each key that was allowed to use it must confirm deleting
    #: its face data (R13, PIPL 47); past them the deletion is overdue.
    "DELETION_HOURS": 72,
    #: Guardian SMS go only to mobile numbers of these regions (ISO 3166 codes, comma-separated).
    "SMS_ALLOWED_REGIONS": "CN",
    #: SMS one organization may send in 24 hours, every kind together.
    "SMS_DAILY_LIMIT": 500,
    "STATUS_LIST_TTL": 60,
    "API_KEY_CACHE_SECONDS": 5,
    "LOG_FORMAT": "json",
    "RATE_LIMITS_ENABLED": True,
    "RATE_LIMIT_PREFIX": "consent-gate",
    #: Proxies in front of the service that append to ``X-Forwarded-For``; 0 trusts no such header.
    "TRUSTED_PROXY_HOPS": 0,
    "RATE_LIMIT_API": "1200/minute",
    "RATE_LIMIT_VERIFY": "600000/minute",
    "RATE_LIMIT_PUBLIC": "600/minute",
    "RATE_LIMIT_GUARDIAN": "60/minute",
    #: The person's own page (``/p/<token>``), per client address, like the guardian's pages.
    "RATE_LIMIT_PEOPLE": "60/minute",
    "LOG_REQUESTS": True,
    #: ``/metrics`` answers only ``Authorization: Bearer <METRICS_TOKEN>``; unset: 404, except in development.
    "METRICS_TOKEN": None,
    "FILING_HOLIDAYS": "",
    "FILING_EXTRA_WORKDAYS": "",
    #: Locales every person-facing text of a purpose must be given in (comma-separated; zh-CN, en).
    "REQUIRED_LOCALES": "zh-CN",
}

_INTS = {
    "GUARDIAN_AGE",
    "ASSESSMENT_VALID_DAYS",
    "FILING_THRESHOLD",
    "MAX_CONTENT_LENGTH",
    "BATCH_MAX_CONTENT_LENGTH",
    "PAGE_SIZE_MAX",
    "SMS_RETRY_ATTEMPTS",
    "GUARDIAN_REQUEST_HOURS",
    "GUARDIAN_POLL_INTERVAL",
    "ACCESS_LINK_HOURS",
    "REASK_AFTER_DAYS",
    "DELETION_HOURS",
    "STATUS_LIST_TTL",
    "API_KEY_CACHE_SECONDS",
    "DB_TIMEOUT_MS",
    "WORKER_THREADS",
    "DB_POOL_SIZE",
    "SMS_DAILY_LIMIT",
    "TRUSTED_PROXY_HOPS",
    "OUTBOX_MAX_ATTEMPTS",
    "OUTBOX_KEEP_DAYS",
}
_FLOATS = {"SMS_RETRY_BACKOFF", "OUTBOX_BACKOFF_SECONDS", "OUTBOX_POLL_SECONDS", "WEBHOOK_TIMEOUT_SECONDS"}
_BOOLS = {"PROHIBIT_SENSITIVE_ANALYSIS", "SQL_ECHO", "LOG_REQUESTS", "RATE_LIMITS_ENABLED"}


class ConfigError(RuntimeError):
    """A setting has a value the service refuses to run with."""


def _parse(name: str, raw: str) -> Any:
    if name in _INTS:
        try:
            return int(raw)
        except ValueError as exc:
            raise ConfigError(f"{PREFIX}{name} must be an integer, got {raw!r}") from exc
    if name in _FLOATS:
        try:
            return float(raw)
        except ValueError as exc:
            raise ConfigError(f"{PREFIX}{name} must be a number, got {raw!r}") from exc
    if name in _BOOLS:
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{PREFIX}{name} must be true or false, got {raw!r}")
    return raw


#: The longest delay a retry schedule may hold: a week.
MAX_RETRY_DELAY = 7 * 24 * 3600.0


def _delays(name: str, value: Any) -> tuple[float, ...]:
    """A schedule of delays: a comma-separated list of seconds (or already a sequence), each 0 or more."""
    try:
        items = [part for part in value.split(",") if part.strip()] if isinstance(value, str) else list(value)
        delays = tuple(float(item) for item in items)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{PREFIX}{name} must be a comma-separated list of seconds, got {value!r}") from exc
    if not all(0 <= delay <= MAX_RETRY_DELAY for delay in delays):  # NaN and infinity fail too
        raise ConfigError(f"{PREFIX}{name} must list seconds from 0 to {MAX_RETRY_DELAY:.0f}, got {value!r}")
    return delays


def default_delays(name: str) -> tuple[float, ...]:
    """The default schedule of the retry setting ``name`` (``WEBHOOK_RETRY_SECONDS``, ``JOB_RETRY_SECONDS``)."""
    return _delays(name, DEFAULTS[name])


def from_environment(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Return the defaults with every ``CONSENT_GATE_*`` variable applied on top."""
    env = os.environ if environ is None else environ
    settings = dict(DEFAULTS)
    for name in DEFAULTS:
        raw = env.get(PREFIX + name)
        if raw is not None and raw != "":
            settings[name] = _parse(name, raw)
    return settings


#: The locales people are told things in: the pages' and the purposes' texts.
SUPPORTED_LOCALES = ("zh-CN", "en")
#: PostgreSQL's ``synchronous_commit`` levels, for verification records (see README, "Durability").
SYNCHRONOUS_COMMIT = ("on", "off", "local", "remote_write", "remote_apply")
#: Connections one serving thread may hold at once: its request's session (any API request) and the
#: verification endpoint's, which each thread keeps between verifications (``db.HeldConnections``).
CONNECTIONS_PER_THREAD = 2
#: Connections beyond the threads': the SQLite checkpoint thread's, a CLI command's.
POOL_MARGIN = 2


def pool_size(threads: int) -> int:
    """The default ``DB_POOL_SIZE``: every thread's connections open at once, and a margin; at least 5.

    The pool opens up to ``max(10, threads)`` more for peaks (``db.init_app``) and closes them when they
    are returned.
    """
    return max(5, CONNECTIONS_PER_THREAD * threads + POOL_MARGIN)


def is_development(settings: dict[str, Any]) -> bool:
    """Whether missing keys may be generated in the instance folder (``development`` and ``test``)."""
    return settings["ENV"] in {"development", "test"}


def production_problems(settings: dict[str, Any]) -> list[str]:
    """What keeps these settings (before ``finalize``) from running in production, one line each.

    Production refuses the development defaults: a signing key or ``DATA_KEY`` generated into the
    instance folder, guardians' links on ``http://127.0.0.1``, a SQLite file in the instance folder
    (which, for an installed package, lies under the Python installation) and the console SMS provider,
    which writes guardians' links and one-time codes to a file instead of sending them; a real provider
    (``twilio``, ``aliyun``, ``tencent``) without one of its settings is named setting by setting.
    """
    from urllib.parse import urlsplit

    from service.keys.crypto import DataKeyError, DataProtector
    from service.keys.tokens import DEVELOPMENT_MARKER, load_key_set

    problems = []
    key_file = settings.get("SIGNING_KEY_FILE")
    if not key_file:
        problems.append(
            f"{PREFIX}SIGNING_KEY_FILE is not set: the path of the ES256 signing key file every instance "
            "shares; create one with `consent-gate keys init-signing PATH`"
        )
    elif not os.path.isfile(key_file):
        problems.append(
            f"{PREFIX}SIGNING_KEY_FILE {key_file} does not exist (no key is generated in production); "
            f"create it with `consent-gate keys init-signing {key_file}`"
        )
    else:
        try:
            with open(key_file, "rb") as handle:
                generated = DEVELOPMENT_MARKER.strip() in handle.read()
            load_key_set(key_file)
        except (OSError, ValueError) as exc:
            problems.append(f"{PREFIX}SIGNING_KEY_FILE {key_file} holds no usable ES256 key: {exc}")
        else:
            if generated:
                problems.append(
                    f"{PREFIX}SIGNING_KEY_FILE {key_file} was generated for development: create a production "
                    "key with `consent-gate keys init-signing PATH`"
                )
    data_key = settings.get("DATA_KEY")
    if not data_key:
        problems.append(
            f"{PREFIX}DATA_KEY is not set: 32 random bytes, base64-encoded, the same for every instance; "
            f"print one with `consent-gate keys init-data-key` (or `{DATA_KEY_COMMAND}`)"
        )
    else:
        try:
            DataProtector(data_key)
        except DataKeyError as exc:
            problems.append(
                f"{PREFIX}DATA_KEY is unusable: {exc} (32 random bytes, base64-encoded: "
                "`consent-gate keys init-data-key` prints one)"
            )
    public_url = settings.get("PUBLIC_URL")
    if not public_url:
        problems.append(f"{PREFIX}PUBLIC_URL is not set: the https address guardians' links point to")
    else:
        parts = urlsplit(public_url)
        if parts.scheme != "https" or not parts.hostname:
            problems.append(f"{PREFIX}PUBLIC_URL must be an https address with a host, got {public_url!r}")
    if not settings.get("DATABASE_URL"):
        problems.append(
            f"{PREFIX}DATABASE_URL is not set: the default is a SQLite file in the instance folder "
            "(postgresql+psycopg://… in production; a sqlite:/// path of your choosing on one host)"
        )
    provider = settings.get("SMS_PROVIDER")
    if provider == "console":
        problems.append(
            f"{PREFIX}SMS_PROVIDER is console, which writes guardians' links and codes to a file instead of "
            "sending them: set aliyun or tencent (mainland China's providers, registered signature and "
            "templates) or twilio, and their settings"
        )
    else:
        problems.extend(
            f"{PREFIX}{name} is not set (SMS_PROVIDER is {provider})" for name in missing_sms_settings(settings)
        )
    for name in ("ALIYUN_SMS_BASE_URL", "TENCENT_SMS_BASE_URL", "TWILIO_BASE_URL"):
        base_url = settings.get(name)
        if base_url and urlsplit(base_url).scheme != "https":
            problems.append(f"{PREFIX}{name} must be an https address in production, got {base_url!r}")
    metrics_token = settings.get("METRICS_TOKEN")
    if metrics_token and len(metrics_token) < METRICS_TOKEN_MIN_LENGTH:
        problems.append(
            f"{PREFIX}METRICS_TOKEN has {len(metrics_token)} characters: give at least "
            f"{METRICS_TOKEN_MIN_LENGTH} random ones (`{METRICS_TOKEN_COMMAND}`), or leave it unset"
        )
    return problems


def refuse_unsafe_production(settings: dict[str, Any]) -> None:
    """Raise one ``ConfigError`` naming every problem of ``production_problems``, if there is any."""
    if settings["ENV"] not in ENVIRONMENTS:
        raise ConfigError(f"{PREFIX}ENV must be one of {', '.join(ENVIRONMENTS)}, got {settings['ENV']!r}")
    if settings["ENV"] != "production":
        return
    problems = production_problems(settings)
    if problems:
        raise ConfigError(
            "refusing to start in production (CONSENT_GATE_ENV=production, the default):\n"
            + "\n".join(f"  - {problem}" for problem in problems)
            + "\nSet them, or run with CONSENT_GATE_ENV=development on your own machine."
        )


def finalize(settings: dict[str, Any], instance_path: str) -> dict[str, Any]:
    """Fill the derived defaults, which all live in the instance folder."""
    from urllib.parse import urlsplit

    settings["INSTANCE_PATH"] = instance_path
    if not settings["PUBLIC_URL"]:
        served = served_url(instance_path) if settings["ENV"] == "development" else None
        settings["PUBLIC_URL"] = served or DEVELOPMENT_PUBLIC_URL
    if not settings["DATABASE_URL"]:
        settings["DATABASE_URL"] = "sqlite:///" + os.path.join(instance_path, "consent-gate.sqlite3")
    _check_sqlite_folder(settings["DATABASE_URL"])
    _check_rate_limits(settings)
    if not settings["SMS_OUTBOX"]:
        settings["SMS_OUTBOX"] = os.path.join(instance_path, "sms-outbox.jsonl")
    if not settings["SIGNING_KEY_FILE"]:
        settings["SIGNING_KEY_FILE"] = os.path.join(instance_path, "signing-key.pem")
    if not settings["ISSUER"]:
        settings["ISSUER"] = settings["PUBLIC_URL"].rstrip("/")
    if settings["SMS_PROVIDER"] not in SMS_PROVIDERS:
        raise ConfigError(
            f"{PREFIX}SMS_PROVIDER must be one of {', '.join(SMS_PROVIDERS)}, got {settings['SMS_PROVIDER']!r}"
        )
    for name in ("ALIYUN_SMS_BASE_URL", "TENCENT_SMS_BASE_URL", "TWILIO_BASE_URL"):
        parts = urlsplit(settings[name] or "https://default")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{PREFIX}{name} must be an http(s) address, got {settings[name]!r}")
    regions = settings["SMS_ALLOWED_REGIONS"]
    if isinstance(regions, str):
        regions = [region.strip().upper() for region in regions.split(",") if region.strip()]
    if not regions or not all(len(region) == 2 and region.isalpha() for region in regions):
        raise ConfigError(f"{PREFIX}SMS_ALLOWED_REGIONS must list two-letter region codes, e.g. CN")
    settings["SMS_ALLOWED_REGIONS"] = tuple(regions)
    if not 0 <= settings["TRUSTED_PROXY_HOPS"] <= 10:
        raise ConfigError(f"{PREFIX}TRUSTED_PROXY_HOPS must be between 0 and 10")
    if settings["VERIFICATION_SYNCHRONOUS_COMMIT"] not in SYNCHRONOUS_COMMIT:
        raise ConfigError(
            f"{PREFIX}VERIFICATION_SYNCHRONOUS_COMMIT must be one of {', '.join(SYNCHRONOUS_COMMIT)} "
            "(PostgreSQL's synchronous_commit for verification records)"
        )
    if settings["WORKER_THREADS"] < 1:
        raise ConfigError(f"{PREFIX}WORKER_THREADS must be positive")
    if settings["DB_POOL_SIZE"] is None:
        settings["DB_POOL_SIZE"] = pool_size(settings["WORKER_THREADS"])
    if settings["DB_POOL_SIZE"] < 1:
        raise ConfigError(f"{PREFIX}DB_POOL_SIZE must be positive")
    if settings["OUTBOX_MAX_ATTEMPTS"] < 1:
        raise ConfigError(f"{PREFIX}OUTBOX_MAX_ATTEMPTS must be positive")
    if settings["OUTBOX_KEEP_DAYS"] < 1:
        raise ConfigError(f"{PREFIX}OUTBOX_KEEP_DAYS must be positive")
    for name in ("WEBHOOK_RETRY_SECONDS", "JOB_RETRY_SECONDS"):
        settings[name] = _delays(name, settings[name])
    if settings["SMS_DAILY_LIMIT"] < 1:
        raise ConfigError(f"{PREFIX}SMS_DAILY_LIMIT must be positive")
    locales = settings["REQUIRED_LOCALES"]
    if isinstance(locales, str):
        locales = [locale.strip() for locale in locales.split(",") if locale.strip()]
    if not locales or not set(locales) <= set(SUPPORTED_LOCALES):
        raise ConfigError(f"{PREFIX}REQUIRED_LOCALES must list locales among {', '.join(SUPPORTED_LOCALES)}")
    settings["REQUIRED_LOCALES"] = tuple(dict.fromkeys(locales))
    if not 0 <= settings["REASK_AFTER_DAYS"] <= 3650:
        raise ConfigError(f"{PREFIX}REASK_AFTER_DAYS must be between 0 and 3650 days")
    if not 1 <= settings["DELETION_HOURS"] <= 8760:
        raise ConfigError(f"{PREFIX}DELETION_HOURS must be between 1 and 8760 hours")
    if settings["GUARDIAN_AGE"] < 1 or settings["ASSESSMENT_VALID_DAYS"] < 1:
        raise ConfigError("GUARDIAN_AGE and ASSESSMENT_VALID_DAYS must be positive")
    return settings


def served_url(instance_path: str) -> str | None:
    """The address ``consent-gate serve`` last served from this instance folder in development, if any."""
    try:
        with open(os.path.join(instance_path, SERVED_URL_FILE), encoding="utf-8") as handle:
            url = handle.read().strip()
    except OSError:
        return None
    return url if url.startswith(("http://", "https://")) else None


def record_served_url(instance_path: str, url: str) -> None:
    """Record the address served (development), replacing the file at once for commands reading it."""
    path = os.path.join(instance_path, SERVED_URL_FILE)
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(url + "\n")
    os.replace(temporary, path)


def _check_sqlite_folder(url: str) -> None:
    """A SQLite file in a folder that does not exist fails deep in the engine: say so, naming the setting."""
    if not url.startswith("sqlite"):
        return
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        database = make_url(url).database
    except ArgumentError:
        return  # refused, naming the setting, when the engine is made
    if database in (None, "", ":memory:") or database.startswith("file:"):
        return
    folder = os.path.dirname(os.path.abspath(database))
    if not os.path.isdir(folder):
        raise ConfigError(
            f"{PREFIX}DATABASE_URL names a SQLite file in {folder}, which does not exist: "
            "create the folder or correct the URL"
        )


def _check_rate_limits(settings: dict[str, Any]) -> None:
    """Every rate limit parses as flask-limiter reads it: a typo must not switch a limit off."""
    from limits import parse_many

    for name in RATE_LIMIT_SETTINGS:
        value = settings[name]
        try:
            parsed = parse_many(value) if isinstance(value, str) else []
        except ValueError:
            parsed = []
        if not parsed:
            raise ConfigError(
                f"{PREFIX}{name} must be a rate limit such as 600/minute or 10/second;1000/hour, got {value!r}"
            )
        if name == "RATE_LIMIT_VERIFY" and len(parsed) != 1:
            # The verification endpoint's own counter (service/limits/keys.py) applies exactly one.
            raise ConfigError(f"{PREFIX}{name} must be one rate limit, such as 600000/minute, got {value!r}")
