"""The registry's current state: a fold over ``registry_events`` in ``event_seq`` order."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from lakeml.errors import NotFoundError
from lakeml.registry.names import ModelRef
from lakeml.registry.records import Deployment, ModelAlias, ModelVersion, RegisteredModel, RegistryEvent

ENTITY_TYPES = {"model": RegisteredModel, "version": ModelVersion, "alias": ModelAlias, "deployment": Deployment}


@dataclass
class RegistryState:
    """Models, versions, live aliases and deployments as of event ``seq``."""

    seq: int = 0
    models: dict[str, RegisteredModel] = field(default_factory=dict)
    versions: dict[str, dict[int, ModelVersion]] = field(default_factory=dict)
    aliases: dict[str, dict[str, ModelAlias]] = field(default_factory=dict)
    deployments: dict[str, Deployment] = field(default_factory=dict)

    def copy(self) -> "RegistryState":
        return RegistryState(self.seq, dict(self.models), {k: dict(v) for k, v in self.versions.items()},
                             {k: dict(v) for k, v in self.aliases.items()}, dict(self.deployments))

    def apply(self, ev: RegistryEvent) -> None:
        """Fold one event in; events at or below ``seq`` were already applied and are skipped."""
        if ev.event_seq <= self.seq:
            return
        self.seq = ev.event_seq
        if ev.outcome != "applied":
            return
        rec = ENTITY_TYPES[ev.entity].from_stored(ev.after) if ev.after is not None else None
        if ev.entity == "model":
            self.models[ev.model_name] = rec
        elif ev.entity == "version":
            self.versions.setdefault(ev.model_name, {})[rec.version] = rec
        elif ev.entity == "alias":
            live = self.aliases.setdefault(ev.model_name, {})
            if rec is None or rec.version is None:
                live.pop(ev.alias, None)
            else:
                live[rec.alias] = rec
        elif ev.entity == "deployment":
            self.deployments[rec.deployment_id] = rec

    # -- lookups ----------------------------------------------------------------------------------
    def model(self, name: str) -> RegisteredModel:
        m = self.models.get(name)
        if m is None:
            known = ", ".join(sorted(self.models)[:10]) or "none yet"
            raise NotFoundError(f"no registered model named {name!r} (models: {known}); register one with "
                                "lake.register_model() or 'lakeml models register'")
        vs = self.versions.get(name, {})
        return dataclasses.replace(m, latest_version=max(vs) if vs else None,
                                   aliases={a: r.version for a, r in sorted(self.aliases.get(name, {}).items())})

    def latest_version(self, name: str) -> int:
        return max(self.versions.get(name, {}), default=0)

    def version(self, name: str, version: int) -> ModelVersion:
        self.model(name)
        mv = self.versions.get(name, {}).get(version)
        if mv is None:
            latest = self.latest_version(name)
            have = f"versions 1..{latest}" if latest else "no versions yet"
            raise NotFoundError(f"model {name!r} has no version {version} ({have}); list them with "
                                f"'lakeml models show {name}'")
        return dataclasses.replace(mv, aliases=self.aliases_of(name, version))

    def resolve(self, ref: ModelRef) -> ModelVersion:
        """The version a reference names: a number, an alias, or the latest."""
        if ref.version is not None:
            return self.version(ref.name, ref.version)
        self.model(ref.name)
        if ref.alias is None:
            latest = self.latest_version(ref.name)
            if not latest:
                raise NotFoundError(f"model {ref.name!r} has no versions yet; register one first")
            return self.version(ref.name, latest)
        al = self.aliases.get(ref.name, {}).get(ref.alias)
        if al is None:
            known = ", ".join(sorted(self.aliases.get(ref.name, {}))) or "none"
            raise NotFoundError(f"model {ref.name!r} has no alias {ref.alias!r} (aliases: {known}); set it with "
                                f"lake.set_alias({ref.name!r}, {ref.alias!r}, version=...)")
        return self.version(ref.name, al.version)

    def aliases_of(self, name: str, version: int) -> list[str]:
        return sorted(a for a, r in self.aliases.get(name, {}).items() if r.version == version)

    def list_versions(self, name: str) -> list[ModelVersion]:
        self.model(name)
        return [self.version(name, v) for v in sorted(self.versions.get(name, {}))]

    def active_deployments(self, name: str | None = None, *, version: int | None = None,
                           environment: str | None = None, service: str | None = None) -> list[Deployment]:
        out = [d for d in self.deployments.values() if d.active
               and (name is None or d.model_name == name) and (version is None or d.version == version)
               and (environment is None or d.environment == environment) and (service is None or d.service == service)]
        return sorted(out, key=lambda d: (d.model_name, d.environment, d.service, d.deployed_at or 0))
