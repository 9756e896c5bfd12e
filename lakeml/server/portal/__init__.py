"""The web portal served at ``/``: server-rendered pages (Jinja2) with small scripts that call the JSON
endpoints under ``/portal/api``; plotly.js comes from the ``plotly`` package. See docs/portal.md.

Adding a page is one template and one call, from any router module listed before the portal in
``ROUTERS``: ``add_page("/drift", "Drift", "drift.html", nav="Drift", templates_dir=HERE / "templates")``
(the template extends ``base.html``; its data comes from a JSON route of your own router).
"""

from __future__ import annotations

from lakeml.server.portal import api as _api  # noqa: F401  (its routes register on the router)
from lakeml.server.portal.pages import PAGES, Page, add_page, public_paths, router

__all__ = ["router", "add_page", "PAGES", "Page", "public_paths"]
