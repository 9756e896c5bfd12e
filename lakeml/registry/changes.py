"""Registry requests turned into ledger events, computed from one state (pure: no I/O, no mutation).

Each function returns a :class:`~lakeml.registry.ledger.Plan`. The ledger calls it again with the
newer state whenever another writer committed first, so version numbers, ``before`` values and
gate decisions are always those of the state the change is committed on.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Callable, Mapping

from lakeml.errors import GateError, NotFoundError
from lakeml.registry.gates import GateFacts, Gates
from lakeml.registry.ledger import Change, Plan
from lakeml.registry.records import Deployment, ModelAlias, ModelVersion, RegisteredModel
from lakeml.registry.state import RegistryState

FactsFn = Callable[[ModelVersion], GateFacts]


def _new_model(name: str, now: datetime, actor: str | None, description: str | None = None,
               tags: Mapping[str, str] | None = None) -> RegisteredModel:
    return RegisteredModel(name, description, dict(tags or {}), None, now, actor, now, actor)


def create_model(st: RegistryState, name: str, *, description: str | None, tags: Mapping[str, str] | None,
                 now: datetime, actor: str | None) -> Plan:
    """Create a model (no-op returning it if it exists)."""
    if name in st.models:
        return Plan(result=st.model(name))
    m = _new_model(name, now, actor, description, tags)
    return Plan([Change("model_created", "model", name, m)], result=m)


def update_model(st: RegistryState, name: str, *, description: str | None = None,
                 set_tags: Mapping[str, str] | None = None, delete_tags: list[str] | None = None,
                 now: datetime, actor: str | None) -> Plan:
    old = st.model(name)
    cur = st.models[name]
    tags = {**cur.tags, **(set_tags or {})}
    for k in delete_tags or ():
        tags.pop(k, None)
    new = cur.replace(description=description if description is not None else cur.description, tags=tags,
                      updated_at=now, updated_by=actor)
    if (new.description, new.tags) == (cur.description, cur.tags):
        return Plan(result=old)
    return Plan([Change("model_updated", "model", name, new, cur)],
                result=old.replace(description=new.description, tags=tags, updated_at=now, updated_by=actor))


def set_gates(st: RegistryState, name: str, gates: Gates | None, *, now: datetime, actor: str | None) -> Plan:
    cur = st.models.get(name)
    if cur is None:
        st.model(name)  # raises NotFoundError
    new = cur.replace(gates=gates.to_dict() if gates is not None and not gates.empty else None,
                      updated_at=now, updated_by=actor)
    if new.gates == cur.gates:
        return Plan(result=gates)
    rules = "; ".join(gates.rules()) if gates is not None and not gates.empty else "none"
    return Plan([Change("gates_set", "model", name, new, cur, message=f"rules: {rules}")], result=gates)


def register(st: RegistryState, name: str, *, source_uri: str, run_id: str | None, artifact_path: str | None,
             flavor: str | None, signature: dict | None, requirements: list[str], description: str | None,
             tags: Mapping[str, str] | None, now: datetime, actor: str | None) -> Plan:
    """Version ``latest + 1`` of ``name`` (creating the model on its first version)."""
    changes = []
    if name not in st.models:
        changes.append(Change("model_created", "model", name, _new_model(name, now, actor)))
    number = st.latest_version(name) + 1
    mv = ModelVersion(name, number, source_uri, run_id, artifact_path, flavor, signature, list(requirements),
                      description, dict(tags or {}), now, actor, now, actor)
    changes.append(Change("version_registered", "version", name, mv, version=number, run_id=run_id))
    return Plan(changes, result=mv)


def update_version(st: RegistryState, name: str, version: int, *, description: str | None = None,
                   set_tags: Mapping[str, str] | None = None, delete_tags: list[str] | None = None,
                   now: datetime, actor: str | None) -> Plan:
    cur = st.versions.get(name, {}).get(version) or st.version(name, version)
    tags = {**cur.tags, **(set_tags or {})}
    for k in delete_tags or ():
        if k not in tags:
            raise NotFoundError(f"version {version} of {name!r} has no tag {k!r} (tags: {', '.join(tags) or 'none'})")
        tags.pop(k)
    new = cur.replace(description=description if description is not None else cur.description, tags=tags,
                      updated_at=now, updated_by=actor)
    if (new.description, new.tags) == (cur.description, cur.tags):
        return Plan(result=st.version(name, version))
    return Plan([Change("version_updated", "version", name, new, cur, version=version, run_id=cur.run_id)],
                result=new.replace(aliases=st.aliases_of(name, version)))


def gate_failures(st: RegistryState, mv: ModelVersion, facts: FactsFn, *, alias: str | None = None,
           environment: str | None = None) -> tuple[list[str], int]:
    """Failed gate rules for promoting ``mv`` (and how many rules applied)."""
    raw = st.models[mv.model_name].gates
    if not raw:
        return [], 0
    gates = Gates.from_dict(raw)
    if gates.empty or not gates.applies_to(alias=alias, environment=environment):
        return [], 0
    f = facts(mv)
    f = GateFacts(f.metrics, f.artifacts, dict(mv.tags), f.run_id, f.steps_done)
    return gates.evaluate(f), len(gates.rules())


def _refusal(mv: ModelVersion, target: str, fails: list[str]) -> GateError:
    lines = "\n".join(f"  - {f}" for f in fails)
    return GateError(f"promotion refused: version {mv.version} of {mv.model_name!r} cannot become {target}; "
                     f"{len(fails)} gate rule(s) failed:\n{lines}\nFix the version (or register a better one), or "
                     f"change the rules with lake.set_gates({mv.model_name!r}, ...).", fails)


def set_alias(st: RegistryState, name: str, alias: str, version: int, *, facts: FactsFn, now: datetime,
              actor: str | None) -> Plan:
    mv = st.version(name, version)
    cur = st.aliases.get(name, {}).get(alias)
    if cur is not None and cur.version == version:
        return Plan(result=cur)
    fails, n = gate_failures(st, mv, facts, alias=alias)
    new = ModelAlias(name, alias, version, cur.version if cur else None, now, actor)
    if fails:
        ch = Change("promotion_refused", "alias", name, new, cur, outcome="refused", version=version, alias=alias,
                    message="; ".join(fails), run_id=mv.run_id)
        return Plan([ch], error=_refusal(mv, f"alias {alias!r}", fails))
    msg = f"passed {n} gate rule(s)" if n else None
    return Plan([Change("alias_set", "alias", name, new, cur, version=version, alias=alias, message=msg,
                        run_id=mv.run_id)], result=new)


def delete_alias(st: RegistryState, name: str, alias: str, *, now: datetime, actor: str | None) -> Plan:
    st.model(name)
    cur = st.aliases.get(name, {}).get(alias)
    if cur is None:
        known = ", ".join(sorted(st.aliases.get(name, {}))) or "none"
        raise NotFoundError(f"model {name!r} has no alias {alias!r} to delete (aliases: {known})")
    new = ModelAlias(name, alias, None, cur.version, now, actor)
    return Plan([Change("alias_deleted", "alias", name, new, cur, version=cur.version, alias=alias)], result=new)


def deploy(st: RegistryState, name: str, version: int, *, environment: str, service: str,
           service_version: str | None, replace: bool, facts: FactsFn, now: datetime, actor: str | None) -> Plan:
    """Record that ``version`` runs in ``environment``/``service``; retires what it replaces there."""
    mv = st.version(name, version)
    live = st.active_deployments(name, environment=environment, service=service)
    for d in live:
        if d.version == version and d.service_version == service_version:
            return Plan(result=d)
    fails, n = gate_failures(st, mv, facts, environment=environment)
    new = Deployment(uuid.uuid4().hex, name, version, environment, service, service_version, now, actor)
    if fails:
        ch = Change("promotion_refused", "deployment", name, new, None, outcome="refused", version=version,
                    environment=environment, service=service, message="; ".join(fails), run_id=mv.run_id)
        return Plan([ch], error=_refusal(mv, f"deployed to environment {environment!r}", fails))
    changes = []
    if replace:
        for d in live:
            reason = f"superseded by version {version} (deployment {new.deployment_id})"
            changes.append(Change("deployment_retired", "deployment", name,
                                  d.replace(retired_at=now, retired_by=actor, retire_reason=reason), d,
                                  version=d.version, environment=environment, service=service, message=reason))
    changes.append(Change("deployed", "deployment", name, new, None, version=version, environment=environment,
                          service=service, message=f"passed {n} gate rule(s)" if n else None, run_id=mv.run_id))
    return Plan(changes, result=new)


def retire(st: RegistryState, name: str, *, environment: str | None, service: str | None,
           deployment_id: str | None, reason: str | None, now: datetime, actor: str | None) -> Plan:
    st.model(name)
    live = [d for d in st.active_deployments(name, environment=environment, service=service)
            if deployment_id is None or d.deployment_id == deployment_id]
    if not live:
        where = ", ".join(f"{k}={v!r}" for k, v in (("environment", environment), ("service", service),
                                                     ("deployment_id", deployment_id)) if v is not None)
        raise NotFoundError(f"model {name!r} has no active deployment{' with ' + where if where else ''}; "
                            f"see 'lakeml models show {name}'")
    changes = [Change("deployment_retired", "deployment", name,
                      d.replace(retired_at=now, retired_by=actor, retire_reason=reason), d, version=d.version,
                      environment=d.environment, service=d.service, message=reason) for d in live]
    return Plan(changes, result=[c.after for c in changes])

