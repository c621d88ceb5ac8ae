"""Secret references: resolved from the environment or a file, only when a value is needed.

Rendered text carries a token (``<secret:NAME>``) where a secret goes; the value replaces it only
in files written with :attr:`SecretMode.RESOLVE` (mode 0600) and in what is pushed to devices.
Plans, diffs, manifests and hashes all see the token, so nothing downstream can leak a value.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path

from .errors import Problem, SecretError
from .model import SecretRef

#: Characters a BGP password may hold: safe inside a TOML string, a BIRD string and an FRR word.
_VALUE = re.compile(r"[A-Za-z0-9._~@%+=:,/^*()\[\]{}<>?&$-]{1,80}")
_TOKEN = re.compile(r"<secret:([a-z0-9-]+)>")


class SecretMode(StrEnum):
    RESOLVE = "resolve"          #: write the real values (files 0600)
    PLACEHOLDER = "placeholder"  #: write ``<secret:NAME>``: for diffs and CI without secrets


def token(name: str) -> str:
    """The placeholder that stands for a secret in rendered text.

    >>> token("tor-md5")
    '<secret:tor-md5>'
    """
    return f"<secret:{name}>"


def _problem(ref: SecretRef, key: str, message: str, hint: str) -> Problem:
    return Problem(ref.declared_in, f"secrets.{ref.name}.{key}", message, hint, ref.line)


def resolve(ref: SecretRef) -> str:
    """The value of one secret. Raises :class:`SecretError` naming the reference, never a value."""
    if ref.env is not None:
        value = os.environ.get(ref.env)
        if value is None:
            raise SecretError(_problem(ref, "env", f"environment variable {ref.env} is not set",
                                       f"export {ref.env}=... , or render with --secrets "
                                       "placeholder for a build without secret values"))
        key = "env"
    else:
        assert ref.file is not None
        path = Path(ref.file)
        try:
            mode = path.stat().st_mode
            value = path.read_text("utf-8").rstrip("\r\n")
        except (OSError, UnicodeError) as exc:
            raise SecretError(_problem(ref, "file", f"cannot read {path}: "
                                       f"{getattr(exc, 'strerror', None) or exc}",
                                       "point file: at a readable UTF-8 file")) from None
        if mode & (stat.S_IROTH | stat.S_IWOTH):
            raise SecretError(_problem(ref, "file", f"{path} is readable by every user",
                                       f"chmod 600 {path}"))
        key = "file"
    if not _VALUE.fullmatch(value):
        raise SecretError(_problem(ref, key, "the secret's value is empty, longer than 80 "
                                   "characters, or holds spaces, quotes or backslashes",
                                   "use 1-80 letters, digits and punctuation other than "
                                   "quotes, backslashes, '#', '!' and ';'"))
    return value


def resolve_all(refs: Iterable[SecretRef]) -> dict[str, str]:
    """Resolve several references; every problem is reported at once."""
    values: dict[str, str] = {}
    problems: list[Problem] = []
    for ref in refs:
        try:
            values[ref.name] = resolve(ref)
        except SecretError as exc:
            problems.extend(exc.problems)
    if problems:
        raise SecretError(problems)
    return values


def fill(text: str, values: Mapping[str, str]) -> str:
    """Replace tokens with values (unknown names are left as tokens).

    >>> fill("password <secret:a>;", {"a": "s3cret"})
    'password s3cret;'
    """
    return _TOKEN.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def fill_named(text: str, names: Iterable[str], values: Mapping[str, str]) -> str:
    """:func:`fill` for a text whose tokens are of ``names`` only (a rendered file's, as the
    render recorded them): a replace per name, no pattern (a build fills 10,000 files).

    >>> fill_named("password <secret:a>; <secret:b>", ["a", "b"], {"a": "s3cret"})
    'password s3cret; <secret:b>'
    """
    for name in names:
        value = values.get(name)
        if value is not None:
            text = text.replace(token(name), value)
    return text


def redact(text: str, values: Mapping[str, str]) -> str:
    """Turn values back into tokens in text that came from a device or a checker.

    A value is a token of its own: it is replaced where no letter or digit touches it on
    either side (a password stands between quotes, spaces, ``=`` or line ends), so a short
    secret never cuts words apart; the longest value wins where several could match.

    >>> redact("neighbor x password s3cret", {"a": "s3cret"})
    'neighbor x password <secret:a>'
    >>> redact('does not exist; password "x";', {"a": "x"})
    'does not exist; password "<secret:a>";'
    """
    if not values or not text:
        return text
    by_value = {v: k for k, v in values.items() if v}
    if not by_value:
        return text
    pattern = re.compile(r"(?<![A-Za-z0-9])(?:"
                         + "|".join(re.escape(v) for v in sorted(by_value, key=len, reverse=True))
                         + r")(?![A-Za-z0-9])")
    return pattern.sub(lambda m: token(by_value[m.group(0)]), text)
