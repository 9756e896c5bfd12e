"""The client's handle on the registry ledger: commits, state, references, gate facts, the audit log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from lakeml import validation as v
from lakeml.clock import us_to_datetime
from lakeml.errors import InvalidInputError
from lakeml.registry import names
from lakeml.registry.gates import GateFacts
from lakeml.registry.records import ModelVersion, RegistryEvent

if TYPE_CHECKING:  # pragma: no cover
    from lakeml.registry.ledger import Ledger
    from lakeml.registry.state import RegistryState


def _tags(tags: Mapping[str, Any] | None, what: str) -> dict[str, str]:
    return {v.validate_key(k, f"{what} tag"): v.tag_value(val, k) for k, val in (tags or {}).items()}


def _text(value: str | None, what: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a string, got {type(value).__name__}")
    if value is not None and len(value) > v.MAX_PARAM_VALUE_LENGTH:
        raise InvalidInputError(f"{what} is {len(value)} characters; the limit is {v.MAX_PARAM_VALUE_LENGTH}")
    return value


class LedgerMixin:
    """Plumbing shared by the registry mixins of :class:`~lakeml.client.lake.Lake`."""

    #: Who registry changes are recorded as; None means the OS user.
    registry_actor: str | None = None

    # -- plumbing -----------------------------------------------------------------------------
    @property
    def registry(self) -> "Ledger":
        """The registry ledger of this lake (created on first use)."""
        led = self.__dict__.get("_registry_ledger")
        if led is None:
            from lakeml.registry.ledger import Ledger

            with self._lock:
                led = self.__dict__.setdefault("_registry_ledger", Ledger(self.store, clock=self.clock))
        return led

    def _actor(self) -> str | None:
        from lakeml.client import runinfo

        return self.registry_actor or runinfo.current_user()

    def _commit(self, fn, **kw: Any) -> Any:
        actor = self._actor()

        def plan(st: "RegistryState"):
            return fn(st, now=us_to_datetime(self.clock()), actor=actor, **kw)

        return self.registry.commit(plan, actor=actor)

    def _state_now(self) -> "RegistryState":
        return self.registry.state()

    def _ref(self, name: str, version: Any = None) -> names.ModelRef:
        if version is not None:
            if isinstance(version, str) and version.lower() == "latest":
                return names.ModelRef(names.model_name(name))
            return names.ModelRef(names.model_name(name), version=names.version(version))
        text = name[len("models:"):].lstrip("/") if isinstance(name, str) and name.startswith("models:") else name
        return names.parse_ref(text)

    def _facts_fn(self):
        memo: dict[tuple[str, int], GateFacts] = {}

        def facts(mv: ModelVersion) -> GateFacts:
            key = (mv.model_name, mv.version)
            if key not in memo:
                if mv.run_id is None:
                    memo[key] = GateFacts()
                else:
                    run = self.get_run(mv.run_id)
                    memo[key] = GateFacts(dict(run.metrics), frozenset(self.artifacts.walk(run.artifact_uri)),
                                          {}, mv.run_id)
            return memo[key]

        return facts

    def registry_events(self, name: str | None = None) -> list[RegistryEvent]:
        """The audit log (of one model): every change and every refused promotion, oldest first."""
        if name is not None:
            self.get_model(name)
        return self.registry.events(name)

    def sync_registry(self) -> dict[str, int]:
        """Catch the projection tables up with the ledger (done after every change; for recovery)."""
        return self.registry.sync()
