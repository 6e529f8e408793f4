"""/docs and /redoc load every file they need from the app itself: they work with no network."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from salespilot.serving.app import create_app


@pytest.fixture(scope="module")
def docs_client(tmp_path_factory):
    from salespilot.settings import Settings

    settings = Settings(state_dir=tmp_path_factory.mktemp("docs-state"))
    with TestClient(create_app(settings, load=False)) as c:
        yield c


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_only_files_the_app_serves(docs_client, page):
    r = docs_client.get(page)
    assert r.status_code == 200 and "SalesPilot API" in r.text
    urls = set(re.findall(r"""(?:src|href|spec-url)=["']([^"']+)["']""", r.text))
    urls |= set(re.findall(r"""url:\s*["']([^"']+)["']""", r.text))
    assert urls, r.text
    remote = sorted(u for u in urls if "//" in u)
    assert not remote, remote
    for url in urls:
        got = docs_client.get(url)
        assert got.status_code == 200, url
        assert len(got.content) > 100, url
    scripts = [u for u in urls if u.endswith(".js")]
    assert scripts and all(len(docs_client.get(u).content) > 100_000 for u in scripts)
