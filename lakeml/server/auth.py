"""Access tokens of ``lakeml server``: stored as events in the Iceberg table ``server_tokens``.

A token looks like ``lkml_<id>_<secret>``. Only the SHA-256 of the secret is stored, so the token is
shown once, by ``lakeml server token create``. Scopes are ``read`` < ``write`` < ``admin`` (each
includes the ones before it); roles are free names the lifecycle checks (``Principal.roles``).

Every replica reads the same table: :class:`TokenAuth` keeps the live tokens in memory and reloads
them when it meets an unknown token (a load that starts after the request, shared by concurrent ones and
at most every :data:`UNKNOWN_GAP_SECONDS`; the same unknown id again only after :data:`REFRESH_SECONDS`)
and, in the background, when its copy is older than :data:`REFRESH_SECONDS`. So a token created by the
CLI works on its first use, and a revocation counts within seconds, without a restart.

Authentication is required when any live token exists, or when the server binds a non-loopback
address; otherwise every caller is an anonymous admin named after the OS user.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from lakeml.errors import ConflictError, InvalidInputError, NotFoundError

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.server.deps import Principal
    from lakeml.server.settings import ServerSettings
    from lakeml.storage.tables import TableStore

TABLE = "server_tokens"
PREFIX = "lkml"
SCOPES = ("read", "write", "admin")
REFRESH_SECONDS = 2.0  # the in-memory copy is reloaded in the background when older than this
UNKNOWN_GAP_SECONDS = 0.5  # loads caused by unknown tokens start at least this far apart
NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
ROLE_RULE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
_TOKEN_RULE = re.compile(r"^lkml_([0-9a-f]{12})_([0-9a-f]{48})$")

# Paths answered without a token: exact paths, and prefixes (end them with '/'). The portal adds its
# login page and static assets here (``PUBLIC_PREFIXES.add("/static/")``).
PUBLIC_PATHS: set[str] = {"/health"}
PUBLIC_PREFIXES: set[str] = set()


def is_public(path: str) -> bool:
    """Whether ``path`` is served without authentication."""
    return path in PUBLIC_PATHS or any(path.startswith(p) for p in PUBLIC_PREFIXES)


@dataclass(frozen=True)
class TokenInfo:
    """A live or revoked token, as stored (never the secret)."""

    token_id: str
    name: str
    scope: str
    roles: tuple[str, ...]
    secret_sha256: str
    created_at: Any  # datetime (UTC)
    created_by: str | None
    description: str | None = None
    revoked_at: Any = None
    revoked_by: str | None = None

    @property
    def live(self) -> bool:
        return self.revoked_at is None

    def public(self) -> dict[str, Any]:
        """What ``token list`` shows: everything but the hash."""
        return {"name": self.name, "token_id": self.token_id, "scope": self.scope, "roles": list(self.roles),
                "created_at": _iso(self.created_at), "created_by": self.created_by,
                "description": self.description, "revoked_at": _iso(self.revoked_at), "revoked_by": self.revoked_by}


def _iso(ts: Any) -> str | None:
    return None if ts is None else ts.isoformat()


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_token(token: str) -> tuple[str, str] | None:
    """``(token_id, secret)`` of a well-formed token, else None."""
    m = _TOKEN_RULE.match(token.strip()) if isinstance(token, str) else None
    return (m.group(1), m.group(2)) if m else None


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RULE.match(name):
        raise InvalidInputError(
            f"token name {name!r} is not valid: use 1 to 64 letters, digits, '.', '_', '@' or '-', starting "
            "with a letter or digit (it is recorded as the user of every write made with the token), e.g. 'ci'")
    return name


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise InvalidInputError(f"token scope {scope!r} is not valid: use read, write or admin "
                                "(each includes the ones before it)")
    return scope


def check_roles(roles: Iterable[str]) -> tuple[str, ...]:
    out = []
    for r in roles or ():
        if not isinstance(r, str) or not ROLE_RULE.match(r):
            raise InvalidInputError(f"role {r!r} is not valid: use 1 to 64 letters, digits, '_', '.' or '-', "
                                    "starting with a letter, e.g. data_scientist")
        if r not in out:
            out.append(r)
    return tuple(out)


class TokenStore:
    """Create, list and revoke tokens in ``server_tokens`` (append-only events, compare-and-swap)."""

    def __init__(self, store: "TableStore", *, deadline: float = 30.0):
        self.store = store
        self.deadline = deadline
        self._snapshot: int | None = -1
        self._tokens: dict[str, TokenInfo] = {}
        self._lock = threading.Lock()

    # -- reads --------------------------------------------------------------------------------
    def load(self, *, refresh: bool = True) -> dict[str, TokenInfo]:
        """Every token ever created, by id (revoked ones have ``revoked_at``); re-reads only a new snapshot."""
        tbl = self.store.table(TABLE, refresh=refresh)
        return self._fold(tbl)

    def _fold(self, tbl: Any) -> dict[str, TokenInfo]:
        snap = tbl.current_snapshot()
        snap_id = snap.snapshot_id if snap is not None else None
        with self._lock:
            if snap_id == self._snapshot:
                return self._tokens
        tokens: dict[str, TokenInfo] = {}
        if snap is not None:
            rows = tbl.scan(snapshot_id=snap_id).to_arrow().sort_by([("event_time", "ascending")]).to_pylist()
            for r in rows:
                if r["event_type"] == "created":
                    tokens[r["token_id"]] = TokenInfo(
                        token_id=r["token_id"], name=r["name"], scope=r["scope"], roles=tuple(r["roles"] or ()),
                        secret_sha256=r["secret_sha256"], created_at=r["created_at"], created_by=r["created_by"],
                        description=r["description"])
                elif r["event_type"] == "revoked" and r["token_id"] in tokens:
                    t = tokens[r["token_id"]]
                    tokens[r["token_id"]] = TokenInfo(**{**t.__dict__, "revoked_at": r["revoked_at"],
                                                         "revoked_by": r["revoked_by"]})
        with self._lock:
            self._snapshot, self._tokens = snap_id, tokens
        return tokens

    def list(self, *, include_revoked: bool = False) -> list[TokenInfo]:
        """Tokens by name (live ones only, unless ``include_revoked``)."""
        return sorted((t for t in self.load().values() if include_revoked or t.live),
                      key=lambda t: (t.name, _iso(t.created_at) or ""))

    def live(self) -> dict[str, TokenInfo]:
        return {k: t for k, t in self.load().items() if t.live}

    # -- writes -------------------------------------------------------------------------------
    def create(self, name: str, scope: str = "read", *, roles: Iterable[str] = (), created_by: str | None = None,
               description: str | None = None) -> tuple[TokenInfo, str]:
        """A new token: returns its record and the token text (shown once; only its hash is kept).

        A live token of the same name is a :class:`ConflictError`: revoke it first.
        """
        check_name(name)
        check_scope(scope)
        role_t = check_roles(roles)
        token_id = secrets.token_hex(6)
        secret = secrets.token_hex(24)
        now = _now_us()

        def rows(tokens: dict[str, TokenInfo]) -> list[tuple]:
            if any(t.live and t.name == name for t in tokens.values()):
                raise ConflictError(f"a live token named {name!r} already exists; revoke it first with "
                                    f"'lakeml server token revoke {name}', or choose another name")
            return [(now, "created", token_id, name, scope, list(role_t), hash_secret(secret), now, created_by,
                     None, None, description)]

        self._append(rows, f"creating token {name!r}")
        info = self.load()[token_id]
        return info, f"{PREFIX}_{token_id}_{secret}"

    def revoke(self, name: str, *, revoked_by: str | None = None) -> TokenInfo:
        """Revoke the live token called ``name`` (or with that token id)."""
        now = _now_us()
        found: list[TokenInfo] = []

        def rows(tokens: dict[str, TokenInfo]) -> list[tuple]:
            live = [t for t in tokens.values() if t.live and name in (t.name, t.token_id)]
            if not live:
                known = sorted({t.name for t in tokens.values() if t.live})
                raise NotFoundError(f"no live token named {name!r}; names in use: "
                                    f"{', '.join(known) if known else '(none)'} ('lakeml server token list')")
            found[:] = live
            return [(now, "revoked", t.token_id, t.name, t.scope, list(t.roles), None, None, None, now, revoked_by,
                     None) for t in live]

        self._append(rows, f"revoking token {name!r}")
        return self.load()[found[0].token_id]

    def _append(self, make_rows, what: str) -> None:
        from pyiceberg.exceptions import CommitFailedException

        from lakeml.storage.committer import BATCH_ID, rows_to_arrow
        from lakeml.storage.retry import retry_commit
        from lakeml.storage.tables import append

        contract = self.store.contracts[TABLE]

        def attempt(n: int) -> None:
            tbl = self.store.table(TABLE, refresh=True)
            rows = make_rows(self._fold(tbl))
            append(tbl, rows_to_arrow(contract, rows, sort=False), {BATCH_ID: uuid.uuid4().hex})

        retry_commit(attempt, what=what, key=f"commit to {self.store.identifier(TABLE)}", deadline=self.deadline,
                     retry_on=(CommitFailedException,), base_delay=0.02, max_delay=1.0)


def _now_us() -> int:
    from lakeml.clock import now_us

    return now_us()


class TokenAuth:
    """Checks the token of a request against the live tokens (cached; see the module docstring).

    ``required``: True/False forces authentication on/off; None (default) requires it when a live
    token exists or ``loopback`` is False. ``anonymous``: the user name of unauthenticated callers
    when authentication is off (default: the OS user). ``lazy``: read the tokens on the first request
    instead of now (the server answers ``/health`` sooner). Until the tokens have been read once,
    requests wait for them; if they cannot be read, requests get a 503 (never anonymous access).
    """

    def __init__(self, tokens: TokenStore | None = None, *, required: bool | None = None, loopback: bool = True,
                 anonymous: str | None = None, refresh_seconds: float = REFRESH_SECONDS, lazy: bool = False):
        self.tokens = tokens
        self.forced = required
        self.loopback = loopback
        self.anonymous = anonymous or _os_user()
        self.refresh_seconds = refresh_seconds
        self._live: dict[str, TokenInfo] = {}
        self._loaded_at = float("-inf")  # when the newest load started (monotonic)
        self._misses: dict[str, float] = {}  # unknown token ids -> when a load that began after them missed them
        self._lock = threading.Lock()  # one load at a time
        self._bg_lock = threading.Lock()
        self._background: threading.Thread | None = None
        self.last_error: BaseException | None = None
        self._ok = tokens is None  # a load succeeded at least once (until then, fail closed)
        if tokens is not None and not lazy:
            self.refresh()

    @classmethod
    def for_lake(cls, lake: Any, settings: "ServerSettings", *, lazy: bool = False) -> "TokenAuth":
        from lakeml.server.settings import is_loopback

        # --insecure on a public address: anonymous access on purpose, until a token is created
        return cls(TokenStore(lake.store), required=settings.auth_required,
                   loopback=is_loopback(settings.host) or settings.insecure, lazy=lazy)

    @property
    def loaded(self) -> bool:
        """Whether the tokens have been read (successfully) at least once."""
        return self._ok

    @property
    def live_tokens(self) -> dict[str, TokenInfo]:
        """The live tokens as last loaded, by id."""
        return dict(self._live)

    @property
    def required(self) -> bool:
        """Whether requests must carry a valid token right now."""
        if self.forced is not None:
            return self.forced
        return bool(self._live) or not self.loopback or not self._ok

    def refresh(self, *, since: float | None = None) -> None:
        """Reload the live tokens (errors are kept in ``last_error``; the old copy stays). ``since``: skip
        the load when one that started after that moment already finished (concurrent callers share it),
        and start it no sooner than :data:`UNKNOWN_GAP_SECONDS` after the previous one (a flood of
        made-up tokens costs at most a few catalog reads per second)."""
        if self.tokens is None:
            return
        with self._lock:
            if since is not None:
                if self._loaded_at >= since:
                    return
                pause = self._loaded_at + UNKNOWN_GAP_SECONDS - time.monotonic()
                if pause > 0:  # callers arriving meanwhile queue on the lock and share this load
                    time.sleep(pause)
            self._loaded_at = time.monotonic()
            try:
                live = self.tokens.live()
            except Exception as e:  # storage down: keep serving with what we know
                self.last_error = e
                return
            self.last_error = None
            self._live = live
            self._ok = True

    def _refresh_in_background(self) -> None:
        """Start a reload when the copy is older than ``refresh_seconds`` (revocations, the first token)."""
        if self.tokens is None or time.monotonic() - self._loaded_at < self.refresh_seconds:
            return
        with self._bg_lock:
            if self._background is not None and self._background.is_alive():
                return
            self._background = threading.Thread(target=self.refresh, name="lakeml-token-refresh", daemon=True)
            self._background.start()

    def authenticate(self, token: str | None) -> "Principal":
        """The caller of a request carrying ``token`` (None: none); raises a 401 :class:`ApiError`."""
        from lakeml.server.deps import Principal
        from lakeml.server.errors import ApiError

        if not self._ok:  # the first request (lazy), or the tokens could not be read so far
            if self._lock.locked():  # a load is under way: wait for it
                with self._lock:
                    pass
            elif time.monotonic() - self._loaded_at >= self.refresh_seconds:  # at most one failing load per period
                self.refresh()
            if not self._ok:
                err = self.last_error
                raise ApiError(503, f"the server cannot read its tokens ({type(err).__name__}: {err}); retry in a "
                                    "moment, and check storage with 'lakeml doctor'", code="TEMPORARILY_UNAVAILABLE")
        self._refresh_in_background()
        if not self.required:
            info = self._lookup(token) if token else None
            if info is not None:
                return Principal(name=info.name, scope=info.scope, roles=info.roles, token_id=info.token_id)
            return Principal(name=self.anonymous, scope="admin")
        if not token:
            raise ApiError(401, "this lakeml server requires a token: send 'Authorization: Bearer <token>' (or "
                                "basic auth with the token as the password, e.g. MLFLOW_TRACKING_TOKEN); create one "
                                "with 'lakeml server token create --name NAME --scope read|write|admin'",
                           code="UNAUTHENTICATED", field="Authorization")
        info = self._lookup(token)
        if info is None:
            raise ApiError(401, "the token is unknown or revoked; check it with 'lakeml server token list' "
                                "and create a new one with 'lakeml server token create'",
                           code="UNAUTHENTICATED", field="Authorization")
        return Principal(name=info.name, scope=info.scope, roles=info.roles, token_id=info.token_id)

    def _due(self, token_id: str) -> bool:
        """Whether an unknown token id is worth a load: never missed, or missed over ``refresh_seconds`` ago."""
        missed = self._misses.get(token_id)
        return self.tokens is not None and (missed is None or time.monotonic() - missed >= self.refresh_seconds)

    def may_block(self, token: str | None) -> bool:
        """Whether :meth:`authenticate` would read the table first (an unknown token): then the
        middleware runs it in a worker thread instead of the event loop."""
        if not self._ok:
            return True
        parsed = parse_token(token) if token else None
        return parsed is not None and parsed[0] not in self._live and self._due(parsed[0])

    def _lookup(self, token: str) -> TokenInfo | None:
        parsed = parse_token(token)
        if parsed is None:
            return None
        token_id, secret = parsed
        info = self._live.get(token_id)
        if info is None and self._due(token_id):  # perhaps created since the last load: load once more
            self.refresh(since=time.monotonic())
            info = self._live.get(token_id)
            if info is None:
                if len(self._misses) > 10_000:
                    self._misses.clear()
                self._misses[token_id] = time.monotonic()
        if info is None or not hmac.compare_digest(info.secret_sha256, hash_secret(secret)):
            return None
        return info


def _os_user() -> str:
    from lakeml.tracking.runinfo import current_user

    return current_user() or "anonymous"
