"""The secrets tests create, and a log handler that finds them in log lines.

Fixtures and tests register what they make secret: connection passwords, AWS
secret keys, Secrets Manager values (``register_secret``). A source of secrets
that only knows them later, such as a moto server holding whatever a test
stored in Secrets Manager, is added as a harvester and asked at check time.

``LeakCapture`` sits on the root logger for every test (tests/conftest.py) and
keeps each record as a handler would ship it: formatted message, exception
text, stack and any ``extra`` fields. A registered secret in any of them is a
leak and fails the test.

Values shorter than ``MIN_SECRET_CHARS`` are not registered: "x" or "pw"
occur in ordinary text, so finding them would say nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

MIN_SECRET_CHARS = 8

Harvester = Callable[[], Iterable[str]]

_secrets: set[str] = set()
_harvesters: list[Harvester] = []

# Attributes every LogRecord has; anything else came in through ``extra=``.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}


def register_secret(value: str | None) -> None:
    """Make ``value`` one that no log line may contain from now on."""
    if value is not None and len(value) >= MIN_SECRET_CHARS:
        _secrets.add(value)


def register_url_password(url: str) -> str:
    """Register the password of a connection URL (``scheme://user:password@host``)."""
    password = urlsplit(url).password
    register_secret(None if password is None else unquote(password))
    return url


def register_secret_value(value: str) -> None:
    """A Secrets Manager value: the whole of it, and its password fields if it is JSON."""
    register_secret(value)
    try:
        parsed = json.loads(value)
    except ValueError:
        return
    if isinstance(parsed, dict):
        for key, field in parsed.items():
            if isinstance(field, str) and any(w in key.lower() for w in ("password", "secret")):
                register_secret(field)


def add_harvester(harvester: Harvester) -> None:
    _harvesters.append(harvester)


def remove_harvester(harvester: Harvester) -> None:
    if harvester in _harvesters:
        _harvesters.remove(harvester)


def known_secrets() -> frozenset[str]:
    for harvest in list(_harvesters):
        for value in harvest():
            register_secret_value(value)
    return frozenset(_secrets)


@dataclass(frozen=True)
class Leak:
    secret: str
    line: str

    def describe(self) -> str:
        # Never print the secret itself: the report lands in CI logs.
        shown = f"{self.secret[:2]}…({len(self.secret)} chars)"
        line = self.line
        for form in sorted(_spellings(self.secret), key=len, reverse=True):
            line = line.replace(form, "<SECRET>")
        return f"secret {shown} in log line: {line[:300]}"


def _spellings(secret: str) -> set[str]:
    """The secret as it is, URL-encoded, and escaped inside JSON or a repr."""
    return {secret, quote(secret, safe=""), json.dumps(secret)[1:-1], repr(secret)[1:-1]}


def find_leaks(lines: Iterable[str], secrets: Iterable[str]) -> list[Leak]:
    """Each (secret, line) where the line holds one of the secret's spellings."""
    forms = {secret: _spellings(secret) for secret in secrets}
    return [
        Leak(secret, line)
        for line in lines
        for secret, spellings in forms.items()
        if any(form in line for form in spellings)
    ]


class LeakCapture(logging.Handler):
    """Every record at DEBUG and above, as text, for ``find_leaks``."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []
        self._reported: set[tuple[str, int]] = set()  # (secret, line index)
        self._paused = False

    def emit(self, record: logging.LogRecord) -> None:
        if self._paused:
            return
        try:
            text = self.format(record)
        except (TypeError, ValueError, KeyError):
            # A broken format call still carries its arguments somewhere.
            text = f"{record.msg!r} {record.args!r}"
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}
        if extras:
            text += f" {extras!r}"
        self.lines.append(text)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Ignore records for a while: harvesting secrets is not the test's logging."""
        self._paused, before = True, self._paused
        try:
            yield
        finally:
            self._paused = before

    def new_leaks(self) -> list[Leak]:
        """Leaks not reported yet, in every line so far, of every secret known now."""
        with self.paused():
            secrets = known_secrets()
        fresh = []
        for index, line in enumerate(self.lines):
            for leak in find_leaks([line], secrets):
                if (leak.secret, index) not in self._reported:
                    self._reported.add((leak.secret, index))
                    fresh.append(leak)
        return fresh


def leak_report(leaks: list[Leak], when: str) -> str:
    shown = "\n".join(f"  {leak.describe()}" for leak in leaks[:10])
    return f"{len(leaks)} registered secret(s) appeared in log lines {when}:\n{shown}"
