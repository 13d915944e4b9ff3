"""One scrubber for every value the product stores or prints: URLs lose their passwords and secret
query parameters, free text loses the secrets it quotes.

What counts as a secret: the password of a URL (``user:password@host``); query or conninfo
parameters whose name says so (``password``, ``token``, ``api_key``, ``secret`` ...); ``Bearer``
tokens; and the value of every environment variable whose name says so (``*_API_KEY``, ``*_TOKEN``,
``*_SECRET``, ``*PASSWORD*``), wherever it appears (a provider may echo the key it was given).

Example:
    >>> redact_url("postgresql://me:pw@db:5432/x?sslpassword=s&application_name=ac")
    'postgresql://me@db:5432/x?sslpassword=***&application_name=ac'
    >>> scrub("cannot connect to https://u:pw@llm.local/v1?api_key=abc (HTTP 500)", environ={})
    'cannot connect to https://u@llm.local/v1?api_key=*** (HTTP 500)'
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qsl, urlsplit, urlunsplit

MASK = "***"
#: Names of parameters and environment variables that hold secrets.
SECRET_NAME = re.compile(
    r"pass(word|wd)?|pwd|secret|token|api[-_]?key|apikey|auth|credential", re.I
)
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>()]+", re.I)
_ASSIGNMENT = re.compile(
    r"(?P<name>\b[\w.-]*(?:pass(?:word|wd)?|pwd|secret|token|api[-_]?key|apikey)[\w.-]*)"
    r"(?P<sep>\s*[=:]\s*)(?P<quote>['\"]?)(?P<value>[^\s'\"&,;]+)",
    re.I,
)
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.I)
#: Environment values shorter than this are not scrubbed from text (too likely to be a word).
_MIN_SECRET = 6


def redact_url(url: str) -> str:
    """``url`` without its password and with secret query parameters masked (the user name
    stays, so a stored URL says where, and the user supplies the password again)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # not a URL we can take apart: mask what looks like a credential
        return re.sub(r"//([^/@:\s]*):[^@/\s]*@", r"//\1@", url)
    netloc = parts.netloc
    if parts.password is not None:
        host = parts.hostname or ""
        netloc = f"{parts.username}@{host}" if parts.username else host
        if port is not None:
            netloc += f":{port}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(SECRET_NAME.search(name) for name, _ in pairs):
            query = "&".join(
                f"{name}={MASK if SECRET_NAME.search(name) else value}" for name, value in pairs
            )
    if netloc == parts.netloc and query == parts.query:
        return url  # nothing secret (urlunsplit would also drop an empty netloc: sqlite:////x)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def url_password(url: str) -> str | None:
    """The password of ``url`` exactly as written (before any %-decoding), if it has one."""
    found = re.search(r"://[^/@:\s]*:([^@/\s]*)@", url)
    return found.group(1) if found and found.group(1) else None


def _secret_values(environ: Mapping[str, str]) -> list[str]:
    values = {
        value.strip()
        for name, value in environ.items()
        if SECRET_NAME.search(name) and len(value.strip()) >= _MIN_SECRET
    }
    return sorted(values, key=len, reverse=True)


def scrub(text: str, environ: Mapping[str, str] | None = None, urls: Sequence[str] = ()) -> str:
    """``text`` with every URL redacted, and masked: ``name=secret`` assignments, bearer tokens,
    the values of secret environment variables (``environ``, default ``os.environ``) and the
    passwords of ``urls`` (a driver may quote the one it was given, even undecodable)."""
    if not text:
        return text
    text = _URL.sub(lambda match: redact_url(match.group(0)), text)
    text = _ASSIGNMENT.sub(
        lambda m: (
            m.group(0)
            if m.group("value") == MASK
            else f"{m.group('name')}{m.group('sep')}{m.group('quote')}{MASK}"
        ),
        text,
    )
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    for url in urls:
        password = url_password(url)
        if password:
            text = text.replace(password, MASK)
    for value in _secret_values(os.environ if environ is None else environ):
        text = text.replace(value, MASK)
    return text
