"""A DSN's password stays in this process: masked wherever a DSN is shown, never on a child's argv.

A password can sit in a PostgreSQL URL in three ways: the userinfo (`postgresql://u:pw@host/db`),
a query parameter (`?password=pw`, also `sslpassword=`), or inside a URL that does not even
parse (an unencoded `#` starts a "fragment" halfway through the password).  `mask` hides all
three, working on the raw text rather than on what urllib makes of it.

Child programs (psql, pgbench) read a command line that every user of the machine can see in
`/proc/PID/cmdline`; `for_child` hands them the DSN without its password, and the password in
the environment variable libpq reads (PGPASSWORD), which only the same user can see.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from .errors import ConfigError

MASK = "***"

_QUERY_PASSWORD = re.compile(r"(?i)((?:^|[?&\s])(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]*)")


def mask(dsn: str) -> str:
    """`dsn` with every password replaced by ***, for messages, `db status` and `doctor`."""
    masked = _QUERY_PASSWORD.sub(lambda m: m[1] + MASK, dsn)
    scheme, sep, rest = masked.partition("://")
    if not sep:
        return masked
    # Everything before the last "@" is userinfo: a password may itself hold "@", "/", "#" or "?".
    userinfo, at, host_and_rest = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return masked
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:{MASK}@{host_and_rest}"


def for_child(dsn: str) -> tuple[str, dict[str, str]]:
    """The URL without its password, and the environment that carries the password instead."""
    parts = urlsplit(dsn)
    password = unquote(parts.password) if parts.password is not None else None
    netloc = parts.netloc
    if password is not None:
        userinfo, _, host = netloc.rpartition("@")
        netloc = f"{userinfo.split(':', 1)[0]}@{host}"
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(key == "password" for key, _ in pairs):
        password = next(val for key, val in pairs if key == "password")
        # libpq decodes %XX in a URI but not "+": spaces must be %20.
        query = urlencode([(key, val) for key, val in pairs if key != "password"], safe="/", quote_via=quote)
    clean = urlunsplit(parts._replace(netloc=netloc, query=query))
    if mask(clean) != clean:  # a URL that does not parse, or an sslpassword: nothing we can move safely
        raise ConfigError(f"The DSN {mask(dsn)!r} holds a password that cannot be moved off the command line.",
                          "percent-encode special characters in the password (# is %23, @ is %40), "
                          "or pass it by PGPASSWORD or ~/.pgpass.")
    return clean, ({"PGPASSWORD": password} if password is not None else {})
