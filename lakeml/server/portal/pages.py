"""The portal's HTML pages, its login, and its static files (plotly.js from the ``plotly`` package).

A page is a template that extends ``base.html``; :func:`add_page` registers the route and the nav link.
Pages hold no data: each one's script reads ``/portal/api/...``, so the pages render in milliseconds.
"""

from __future__ import annotations

import functools
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from lakeml.server.deps import COOKIE, principal_of
from lakeml.server.errors import ApiError

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
STATIC_PREFIX = "/portal/static/"
router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Page:
    path: str
    title: str
    template: str
    nav: str | None = None  # label of its link in the top bar (None: not in the bar)


PAGES: list[Page] = []
_TEMPLATE_DIRS: list[Path] = [HERE / "templates"]


def public_paths() -> tuple[str, ...]:
    """Paths served without a token: the login page and the static assets."""
    return ("/login", STATIC_PREFIX)


@functools.lru_cache(maxsize=1)
def _env_for(dirs: tuple[Path, ...]) -> Any:
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader([str(d) for d in dirs]),
                              autoescape=jinja2.select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


def render(request: Request, template: str, title: str, **context: Any) -> HTMLResponse:
    env = _env_for(tuple(_TEMPLATE_DIRS))
    html = env.get_template(template).render(request=request, title=title, nav=[p for p in PAGES if p.nav],
                                             path=request.url.path, static=STATIC_PREFIX, **context)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def _login_redirect(request: Request) -> Response | None:
    """None when the request carries a valid token (or none is needed), else a redirect to /login."""
    try:
        principal_of(request)
    except ApiError as e:
        if e.status != 401:
            raise
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    return None


def _make_public(path: str) -> None:
    from lakeml.server.auth import PUBLIC_PATHS, PUBLIC_PREFIXES

    if "{" in path:
        PUBLIC_PREFIXES.add(path.split("{", 1)[0])
    else:
        PUBLIC_PATHS.add(path)


def add_page(path: str, title: str, template: str, *, nav: str | None = None,
             templates_dir: str | Path | None = None) -> Page:
    """Register a page: GET ``path`` renders ``template`` (extending base.html) for a signed-in user."""
    page = Page(path, title, template, nav)
    _make_public(path)  # the token middleware lets it through; the page itself redirects to /login
    if templates_dir is not None and Path(templates_dir) not in _TEMPLATE_DIRS:
        _TEMPLATE_DIRS.append(Path(templates_dir))
    PAGES.append(page)

    def show(request: Request) -> Response:
        return _login_redirect(request) or render(request, page.template, page.title)

    show.__name__ = "page_" + (path.strip("/").replace("/", "_").replace("{", "").replace("}", "") or "home")
    router.add_api_route(path, show, methods=["GET"], response_class=HTMLResponse)
    return page


add_page("/", "Experiments", "experiments.html", nav="Experiments")
add_page("/runs", "Runs", "runs.html")
add_page("/run/{run_id}", "Run", "run.html")
add_page("/compare", "Compare runs", "compare.html")
add_page("/models", "Models", "models.html", nav="Models")
add_page("/model", "Model", "model.html")
add_page("/sql", "SQL console", "sql.html", nav="SQL")
for _path in ("/login", "/logout", STATIC_PREFIX + "{name}"):
    _make_public(_path)


# -- login ------------------------------------------------------------------------------------
def _safe_next(target: str | None) -> str:
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/", error: str | None = None) -> HTMLResponse:
    return render(request, "login.html", "Sign in", next=_safe_next(next), error=error)


@router.post("/login")
def login(request: Request, token: str = Form(""), next: str = Form("/")) -> Response:
    """Check the token and keep it in the ``lakeml_token`` cookie (HttpOnly, SameSite=Strict)."""
    try:
        request.app.state.auth.authenticate(token.strip() or None)
    except ApiError as e:
        return render(request, "login.html", "Sign in", next=_safe_next(next), error=e.message)
    resp = RedirectResponse(_safe_next(next), status_code=303)
    resp.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict", path="/",
                    secure=request.url.scheme == "https")
    return resp


@router.get("/logout")
def logout() -> Response:
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/")
    return resp


# -- static files -----------------------------------------------------------------------------
def _plotly_js() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise ApiError(404, "plotly is not installed: pip install plotly (the portal's charts ship with it)",
                       code="RESOURCE_DOES_NOT_EXIST")
    return Path(list(spec.submodule_search_locations)[0]) / "package_data" / "plotly.min.js"


@router.get(STATIC_PREFIX + "{name}")
def static(name: str) -> Response:
    """The portal's own assets and ``plotly.min.js`` (cached by the browser for a day)."""
    path = _plotly_js() if name == "plotly.min.js" else STATIC / name
    if "/" in name or name.startswith(".") or not path.is_file():
        raise ApiError(404, f"no static file {name!r}", code="RESOURCE_DOES_NOT_EXIST")
    media = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media, headers={"Cache-Control": "public, max-age=86400"})
