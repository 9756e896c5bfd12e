"""``lakeml models package``: a self-contained service folder for one model version.

The folder holds ``model/`` (the model files and their MLmodel), ``serving.json`` (which version,
its signature and lineage summary), a pinned ``requirements.txt`` (the model's own requirements,
lakeml, and the serving stack at the versions installed here), ``serve.py`` (the same app as
``lakeml models serve``, reading the model from the folder: no lake needed), a ``Dockerfile``, and
with ``k8s``/``kserve`` Kubernetes manifests under ``k8s/``.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import string
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lakeml.errors import ConflictError, InvalidInputError

TEMPLATES = Path(__file__).resolve().parent / "templates"
MODEL_DIR = "model"
#: What serving imports besides lakeml itself, pinned at the versions installed here.
SERVING_STACK = ("fastapi", "uvicorn", "prometheus-client", "numpy", "pandas", "pyyaml")


def _render(name: str, **values: Any) -> str:
    return string.Template((TEMPLATES / name).read_text()).substitute(**values)


def _installed(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def pinned_requirements(model_requirements: list[str], *, lakeml_requirement: str | None = None) -> list[str]:
    """The service's requirements: the model's (as logged), lakeml, then the serving stack pinned to the
    installed versions (a package the model already names keeps the model's pin)."""
    from lakeml import __version__
    from lakeml.registry.mlmodel import requirement_name

    out: list[str] = []
    seen: set[str] = set()

    def add(req: str) -> None:
        key = requirement_name(req).lower().replace("_", "-")
        if key not in seen:
            seen.add(key)
            out.append(req)

    for r in model_requirements:
        name = requirement_name(r)
        if "==" not in r and (have := _installed(name)):  # pin what the model left open
            r = f"{name}=={have}"
        add(r)
    add(lakeml_requirement or f"lakeml=={__version__}")
    for dist in SERVING_STACK:
        if (have := _installed(dist)) is not None:
            add(f"{dist}=={have}")
    return out


def _copy_model(lake: Any, model_uri: str, dst: Path) -> None:
    """Copy the files of a registered model version into ``dst`` (from any artifact store)."""
    from lakeml.storage.artifacts import ArtifactStore

    loc, _ = lake.registry.models_io.model_location(model_uri)
    if loc.startswith("file://") and Path(loc[7:]).is_dir():
        shutil.copytree(Path(loc[7:]), dst, dirs_exist_ok=True)
    else:
        ArtifactStore(loc, lake.config.properties).download(loc, "", dst)


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return (s or "model")[:50].strip("-")


def package_model(lake: Any, model_uri: str, out: str | Path, *, k8s: bool = False, kserve: bool = False,
                  image: str | None = None, port: int = 8080, service: str | None = None,
                  lakeml_requirement: str | None = None) -> dict[str, Any]:
    """Write the service folder of ``model_uri`` (a version of the registry) into ``out``; returns a summary."""
    from lakeml.registry import mlmodel, names
    from lakeml.serving.model import lineage_summary

    dest = Path(out).expanduser().resolve()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ConflictError(f"{dest} exists and is not an empty folder; choose a new folder for -o/--out "
                            "(packaging never overwrites files)")
    parsed = names.parse_model_uri(model_uri)
    if parsed.scheme != "models":
        raise InvalidInputError(f"package takes a registered model (models:/NAME@ALIAS or models:/NAME/VERSION); "
                                f"got {model_uri!r}. Register it first with 'lakeml models register'")
    reg = lake.registry
    mv = reg.state().resolve(parsed.ref)
    try:
        lineage = lineage_summary(reg.deployments.model_lineage(mv.model_name, mv.version))
    except Exception as e:  # noqa: BLE001 - lineage is informative; the package works without it
        lineage = {"run_id": mv.run_id, "error": f"{type(e).__name__}: {e}"}
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".lakeml-package-", dir=dest.parent))  # same file system: rename
    try:
        model_dir = tmp / MODEL_DIR
        model_dir.mkdir()
        _copy_model(lake, mv.model_uri, model_dir)
        data = mlmodel.read(model_dir)
        reqs = pinned_requirements(list(data.get("requirements") or []), lakeml_requirement=lakeml_requirement)
        slug = _slug(mv.model_name)
        image = image or f"lakeml-{slug}:{mv.version}"
        service = service or f"{slug}-v{mv.version}"
        meta = {"model_uri": model_uri, "resolved_uri": mv.model_uri, "model_name": mv.model_name,
                "model_version": mv.version, "flavor": data.get("flavor"), "signature": data.get("signature"),
                "model_dir": MODEL_DIR, "lineage": lineage, "requirements": reqs, "image": image, "port": port,
                "packaged_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (tmp / "serving.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
        (tmp / "requirements.txt").write_text("".join(f"{r}\n" for r in reqs))
        values = dict(resolved_uri=mv.model_uri, image=image, port=port, model_dir=MODEL_DIR, service=service,
                      python_minor=data.get("python_version", "").rsplit(".", 1)[0] or
                      f"{sys.version_info[0]}.{sys.version_info[1]}",
                      app_name=f"{slug}-v{mv.version}", model_label=_slug(mv.model_name),
                      version_label=str(mv.version))
        (tmp / "serve.py").write_text(_render("serve.py.tmpl", **values))
        (tmp / "Dockerfile").write_text(_render("Dockerfile.tmpl", **values))
        (tmp / ".dockerignore").write_text("k8s/\n__pycache__/\n*.pyc\n")
        if k8s or kserve:
            (tmp / "k8s").mkdir()
        if k8s:
            (tmp / "k8s" / "deployment.yaml").write_text(_render("k8s-deployment.yaml.tmpl", **values))
        if kserve:
            (tmp / "k8s" / "inferenceservice.yaml").write_text(_render("kserve.yaml.tmpl", **values))
        if dest.exists():
            dest.rmdir()
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    return {"folder": str(dest), "model_uri": model_uri, "resolved_uri": mv.model_uri, "image": image,
            "requirements": reqs, "files": files}
