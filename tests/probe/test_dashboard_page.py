"""The dashboard's routes and assets, in process through httpx2.ASGITransport."""

from __future__ import annotations

import re
import tomllib
from collections.abc import AsyncIterator
from fnmatch import fnmatch
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from chatcontract.probe.dashboard import ASSET_MEDIA_TYPES, dashboard_routes

pytestmark = pytest.mark.anyio

SUMMARY = {
    "generated_at": "2025-06-10T14:05:00Z",
    "window_hours": 24,
    "contract": {
        "name": "support-bot",
        "provider": "cometapi",
        "owner": "platform-team",
        "reviewed_on": "2025-03-01",
        "review_due_on": "2025-06-20",
        "days_until_review": 10,
    },
    "target": {"base_url": "http://127.0.0.1:8000/v1", "simulated": True, "model": "gpt-4o-mini"},
    "totals": {"probes": 2, "success": 1, "failure": 1},
    "failures_by_kind": {
        "transport": 1,
        "http": 0,
        "api_error": 0,
        "parser": 0,
        "semantic": 0,
        "budget": 0,
    },
    "rates": {
        "schema_valid": 0.5,
        "client_timeout": 0.5,
        "fallback_activation": None,
        "retry_success": None,
        "usage_available": 1.0,
    },
    "counts": {
        "missing_required_paths": 0,
        "parse_failures": 0,
        "auth_failures": 0,
        "rate_limited": 0,
        "quota": 0,
    },
    "response_models": {"gpt-4o-mini": 1},
    "latency_by_prompt_size": {
        "short": {"p50_ms": 420.0, "p95_ms": 420.0, "samples": 1},
        "large": {"p50_ms": None, "p95_ms": None, "samples": 0},
    },
    "timeline": [],
    "probes": {},
    "last_validation": None,
    "drift_events": [],
    "cost": {"spent_today_usd": 0.0, "daily_cap_usd": 1.0, "paused": False},
}

# Namespace names identify XML vocabularies; nothing ever fetches them.
NAMESPACE_URIS = {"http://www.w3.org/2000/svg"}
ASSET_NAMES = sorted(ASSET_MEDIA_TYPES)
SCRIPTS = [name for name in ASSET_NAMES if name.endswith(".js")]
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


async def _summary(request: Request) -> JSONResponse:
    return JSONResponse(SUMMARY)


@pytest.fixture
async def client() -> AsyncIterator[httpx2.AsyncClient]:
    app = Starlette(routes=[*dashboard_routes(), Route("/api/summary", _summary)])
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


class _Links(HTMLParser):
    """Collects the URLs the page asks the browser to load."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.stylesheets: list[str] = []
        self.icons: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "script" and values.get("src"):
            self.scripts.append(values["src"])
        if tag == "link" and values.get("rel") == "stylesheet":
            self.stylesheets.append(values["href"])
        if tag == "link" and values.get("rel") == "icon":
            self.icons.append(values["href"])


async def test_page_is_html_linking_its_script_stylesheet_and_icon(
    client: httpx2.AsyncClient,
) -> None:
    response = await client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    links = _Links()
    links.feed(response.text)
    assert links.scripts == ["static/dashboard.js"]
    assert links.stylesheets == ["static/dashboard.css"]
    assert links.icons == ["static/favicon.svg"]


async def test_page_forbids_loading_anything_outside_the_origin(
    client: httpx2.AsyncClient,
) -> None:
    response = await client.get("/")

    policy = response.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'none'"
    for name in ("script-src", "style-src", "img-src", "connect-src"):
        assert directives[name] == "'self'", name
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("name", ASSET_NAMES, ids=ASSET_NAMES)
async def test_asset_is_served_with_its_media_type(client: httpx2.AsyncClient, name: str) -> None:
    response = await client.get(f"/static/{name}")

    assert response.status_code == 200
    assert response.headers["content-type"] == ASSET_MEDIA_TYPES[name]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert len(response.content) > 100


@pytest.mark.parametrize("path", ["/", *(f"/static/{n}" for n in ASSET_NAMES)])
async def test_no_asset_refers_to_an_external_url(client: httpx2.AsyncClient, path: str) -> None:
    response = await client.get(path)

    urls = set(re.findall(r"(?i)(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s\"'<>)]*", response.text))
    assert urls <= NAMESPACE_URIS


@pytest.mark.parametrize("name", SCRIPTS, ids=SCRIPTS)
async def test_script_never_turns_text_into_markup(client: httpx2.AsyncClient, name: str) -> None:
    script = (await client.get(f"/static/{name}")).text

    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink


async def test_script_reads_the_summary_relative_to_the_page(client: httpx2.AsyncClient) -> None:
    script = (await client.get("/static/dashboard.js")).text

    assert 'const SUMMARY_URL = "api/summary";' in script
    assert (await client.get("/api/summary")).json()["contract"]["name"] == "support-bot"


async def test_favicon_ico_is_answered_so_browsers_log_no_404(client: httpx2.AsyncClient) -> None:
    response = await client.get("/favicon.ico")

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"


@pytest.mark.parametrize(
    "path",
    ["/static/missing.js", "/static/index.html", "/static/..%2F__init__.py"],
    ids=["unknown", "not-an-asset", "traversal"],
)
async def test_only_listed_assets_are_served(client: httpx2.AsyncClient, path: str) -> None:
    response = await client.get(path)

    assert response.status_code == 404


async def test_unchanged_asset_is_revalidated_with_304(client: httpx2.AsyncClient) -> None:
    first = await client.get("/static/dashboard.js")

    second = await client.get(
        "/static/dashboard.js", headers={"If-None-Match": first.headers["etag"]}
    )

    assert first.headers["cache-control"] == "no-cache"
    assert second.status_code == 304
    assert second.content == b""


async def test_head_request_is_answered(client: httpx2.AsyncClient) -> None:
    response = await client.head("/")

    assert response.status_code == 200


def test_every_file_served_ships_as_package_data() -> None:
    # Tests run from the source tree; a wheel holds only what package-data lists.
    settings = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-data"]
    patterns = settings.get("chatcontract.probe.dashboard", [])

    files = [
        entry.name
        for entry in resources.files("chatcontract.probe.dashboard").iterdir()
        if entry.is_file() and not entry.name.endswith((".py", ".pyc"))
    ]

    assert "index.html" in files
    assert [name for name in files if not any(fnmatch(name, p) for p in patterns)] == []
