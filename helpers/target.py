"""The server the course uses, worked out once: embedded or DATABASE_URL, the prefix, the DSNs.

Everything that needs to know "which server, whose databases" takes a `Target` (or calls
`resolve()`, which returns the same object until one of the environment variables it was
made from changes).  So one setup cell decides once, and every message can name the server
actually in use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, urlsplit, urlunsplit

from . import config, names
from .dsn import mask
from .errors import ConfigError
from .server import EmbeddedServer

#: The DSN with every form of its password hidden, for messages (helpers.dsn says how).

_CACHE: dict[tuple[str | None, ...], Target] = {}
_STARTED: set[Path] = set()  # embedded data directories this process has seen ready


@dataclass(frozen=True)
class Target:
    """One server and one learner's prefix on it."""

    url: str | None  # DATABASE_URL as given, or None for the embedded server
    pgdata: Path | None  # the embedded server's data directory, or None
    prefix: str
    prefix_source: str  # why this prefix: the variable or user it came from

    @property
    def embedded(self) -> bool:
        return self.url is None

    @property
    def kind(self) -> str:
        return "embedded" if self.embedded else "DATABASE_URL"

    def server(self) -> EmbeddedServer:
        if self.pgdata is None:
            raise ConfigError("DATABASE_URL is set: the course does not run that server.",
                              "start or stop it where it runs, or unset DATABASE_URL to use the embedded server.")
        return EmbeddedServer(self.pgdata)

    def label(self) -> str:
        """The server in words, for messages: which one, and where."""
        if self.embedded:
            return f"the embedded server in {self.pgdata}"
        return f"the server in DATABASE_URL ({mask(self.url or '')})"

    def dsn(self, database: str = "postgres") -> str:
        """The DSN of `database` on this server (nothing is started or checked)."""
        if self.url is None:
            return self.server().dsn(database)
        return urlunsplit(parse_url(self.url)._replace(path=f"/{database}"))

    def ensure_running(self, *, recheck: bool = False) -> None:
        """Start the embedded server unless this process has already seen it ready (or `recheck`)."""
        if self.pgdata is None or (self.pgdata in _STARTED and not recheck):
            return
        self.server().start()
        _STARTED.add(self.pgdata)

    def forget_running(self) -> None:
        """The server went away (a crash, a stop): check again next time."""
        if self.pgdata is not None:
            _STARTED.discard(self.pgdata)

    # -- names of this prefix's databases -----------------------------------------------
    def database(self, notebook: str) -> str:
        return names.database_name(self.prefix, notebook)

    def template(self) -> str:
        return names.template_name(self.prefix)

    # -- advice for messages ------------------------------------------------------------
    def start_advice(self) -> str:
        if self.embedded:
            return "start the embedded server with `python -m helpers db start` (or run the setup cell again)."
        return ("start that server (with docker compose: `docker compose up -d`), "
                "or unset DATABASE_URL to use the embedded server.")

    def login_advice(self) -> str:
        if self.embedded:
            return "the embedded server lets its superuser in without a password; check the role in the DSN."
        return "check the user and password in DATABASE_URL."


def resolve() -> Target:
    """The target for the current environment, made once per process and environment."""
    key = config.watched_environment()
    target = _CACHE.get(key)
    if target is None:
        url = config.database_url()
        if url is not None:
            parse_url(url)
        prefix, source = config.prefix_and_source()
        target = Target(url=url, pgdata=None if url else config.pgdata_dir(), prefix=prefix, prefix_source=source)
        _CACHE.clear()
        _CACHE[key] = target
    return target


def parse_url(url: str) -> SplitResult:
    """The parts of a PostgreSQL URL; anything else is a ConfigError that shows the expected form."""
    parts: SplitResult | None = urlsplit(url)
    try:
        assert parts is not None
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("postgres", "postgresql") or not (parts.hostname or "host=" in url):
        raise ConfigError(
            f"DATABASE_URL is not a PostgreSQL URL: {mask(url)!r}.",
            "use the form postgresql://USER:PASSWORD@HOST:PORT/DATABASE, "
            "e.g. postgresql://course:course@127.0.0.1:55432/postgres, or unset it to use the embedded server.",
        )
    return parts
