"""Rules for model names, aliases and versions, and the parsing of ``models:/`` and ``runs:/`` URIs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from numbers import Integral
from typing import Any

from lakeml.errors import InvalidInputError

MAX_NAME = 256
RESERVED_ALIASES = frozenset({"latest"})
# Each pattern is used with fullmatch ('$' would let a trailing newline through).
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_VERSION_LIKE = re.compile(r"[vV]?[0-9]+")
_ENV = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


def model_name(name: Any) -> str:
    """Model names: letters, digits, '_', '.', '-', starting with a letter or digit (so URIs stay unambiguous)."""
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"model name must be a non-empty string, got {_short(name)}")
    if len(name) > MAX_NAME or not _MODEL.fullmatch(name):
        raise InvalidInputError(
            f"invalid model name {_short(name)}: use at most {MAX_NAME} letters, digits, '_', '.' or '-', "
            "starting with a letter or digit (no '/', '@' or spaces), e.g. 'churn' or 'fraud-detector'")
    return name


def alias(name: Any) -> str:
    """Aliases: letters, digits, '_' and '-', starting with a letter or '_'; not 'latest', not like 'v3' or '3'."""
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"alias must be a non-empty string, got {_short(name)}")
    if name.lower() in RESERVED_ALIASES:
        raise InvalidInputError(f"alias {name!r} is reserved: models:/<name>/latest always means the newest "
                                "version; choose another alias such as 'champion'")
    if _VERSION_LIKE.fullmatch(name):
        raise InvalidInputError(f"alias {name!r} looks like a version number, which would make "
                                f"'models:/<name>@{name}' ambiguous; choose a word such as 'champion' or 'stable'")
    if len(name) > MAX_NAME or not _ALIAS.fullmatch(name):
        raise InvalidInputError(f"invalid alias {_short(name)}: use letters, digits, '_' and '-', starting with a "
                                "letter or '_', e.g. 'champion'")
    return name


def version(v: Any) -> int:
    """A version number: an integer >= 1 (numeric strings such as '3' are accepted)."""
    if isinstance(v, str) and v.strip().isdigit():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, Integral) or int(v) < 1:
        raise InvalidInputError(f"model version must be an integer >= 1, got {_short(v)}")
    return int(v)


def environment(name: Any, what: str = "environment") -> str:
    """Environment and service names: letters, digits, '_', '.', '-'."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or not _ENV.fullmatch(name):
        raise InvalidInputError(f"invalid {what} {_short(name)}: use letters, digits, '_', '.' or '-', "
                                "e.g. 'prod' or 'scoring-api'")
    return name


@dataclass(frozen=True)
class ModelRef:
    """A reference to one model version: by number, by alias, or the latest."""

    name: str
    version: int | None = None
    alias: str | None = None  # None with version None means "latest"

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}/{self.version}"
        return f"{self.name}@{self.alias}" if self.alias else f"{self.name}/latest"


def parse_ref(text: Any) -> ModelRef:
    """Parse ``NAME/VERSION``, ``NAME/latest`` or ``NAME@ALIAS`` (a bare ``NAME`` means latest)."""
    if not isinstance(text, str) or not text:
        raise InvalidInputError(f"model reference must be a string like 'churn/3' or 'churn@champion', "
                                f"got {_short(text)}")
    if "@" in text:
        name, _, al = text.partition("@")
        return ModelRef(model_name(name), alias=alias(al) if al.lower() != "latest" else None)
    name, sep, ver = text.partition("/")
    if not sep or ver.lower() == "latest":
        return ModelRef(model_name(name))
    if not _VERSION_LIKE.fullmatch(ver):
        raise InvalidInputError(f"model reference {text!r}: after '/' comes a version number or 'latest' "
                                "(use '@' for an alias: 'churn@champion')")
    return ModelRef(model_name(name), version=version(ver.lstrip("vV")))


@dataclass(frozen=True)
class ModelUri:
    """A parsed model URI: ``models:/...`` (a registry reference), ``runs:/<run_id>/<path>``, or a location."""

    scheme: str  # "models", "runs" or "location"
    ref: ModelRef | None = None
    run_id: str | None = None
    path: str = ""
    location: str | None = None


def parse_model_uri(uri: Any) -> ModelUri:
    """``models:/churn/3``, ``models:/churn@champion``, ``models:/churn/latest``, ``runs:/<id>/model``,
    or a folder (local path, ``file://`` or ``s3://`` URI) that holds an MLmodel file."""
    if not isinstance(uri, str) or not uri:
        raise InvalidInputError(f"model URI must be a string such as 'models:/churn@champion', got {_short(uri)}")
    if uri.startswith("models:"):
        rest = uri[len("models:"):].lstrip("/")
        if not rest:
            raise InvalidInputError(f"model URI {uri!r} names no model; use 'models:/<name>/<version>' or "
                                    "'models:/<name>@<alias>'")
        return ModelUri("models", ref=parse_ref(rest))
    if uri.startswith("runs:"):
        rest = uri[len("runs:"):].lstrip("/")
        run_id, _, path = rest.partition("/")
        if not re.fullmatch(r"[0-9a-f]{32}", run_id):
            raise InvalidInputError(f"model URI {uri!r}: expected 'runs:/<run id (32 hex characters)>/<path>'")
        return ModelUri("runs", run_id=run_id, path=path.strip("/"))
    return ModelUri("location", location=uri)
