"""``SALESPILOT_ENV=prod`` refuses what is fine on a laptop: a public interface without TLS,
an unsigned webhook, the demo's tokens (printed and saved in clear)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from salespilot.settings import Settings


@pytest.fixture
def prod(tmp_path, monkeypatch):
    monkeypatch.setenv("SALESPILOT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SALESPILOT_ENV", "prod")


def test_dev_accepts_what_prod_refuses(tmp_path, monkeypatch):
    monkeypatch.setenv("SALESPILOT_STATE_DIR", str(tmp_path / "state"))
    s = Settings(host="0.0.0.0", webhook_url="https://hooks.example.com/lists")
    assert s.env == "dev" and s.webhook_secret is None


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_prod_serves_on_loopback(prod, host):
    assert Settings(host=host).host == host


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "api.example.com"])
def test_prod_refuses_a_public_interface_without_the_explicit_setting(prod, host):
    with pytest.raises(ValidationError, match="SALESPILOT_ALLOW_PUBLIC_BIND=true"):
        Settings(host=host)
    assert Settings(host=host, allow_public_bind=True).host == host


def test_prod_refuses_a_webhook_without_its_secret(prod):
    url = "https://hooks.example.com/lists"
    with pytest.raises(ValidationError, match="SALESPILOT_WEBHOOK_SECRET"):
        Settings(webhook_url=url)
    assert Settings(webhook_url=url, webhook_secret="s3cret").webhook_url == url


def test_prod_delivery_refuses_to_post_unsigned(prod, tmp_path):
    from salespilot.flows.morning import send_pending
    from salespilot.flows.outbox import Outbox

    outbox = Outbox(tmp_path / "outbox")
    outbox.put("R1-2026-12-02", {"rep_id": "R1", "items": []})
    with pytest.raises(ValueError, match="SALESPILOT_WEBHOOK_SECRET"):
        send_pending(outbox, "https://hooks.example.com/lists", Settings())
    assert [d.delivery_id for d in outbox.pending()] == ["R1-2026-12-02"]  # kept, not sent


def test_prod_refuses_to_start_with_the_demo_tokens(prod):
    from salespilot.serving.app import create_app
    from salespilot.serving.auth import DemoTokensActive, TokenStore, demo_token_name

    settings = Settings()
    store = TokenStore.for_state_dir(settings.state_dir)
    store.create(role="admin", name="ops")
    _secret, demo = store.create(role="admin", name=demo_token_name("admin"))
    with pytest.raises(DemoTokensActive, match=rf"revoke {demo.token_id} with"):
        create_app(settings, load=False)
    store.revoke(demo.token_id)
    create_app(settings, load=False)  # the remaining token is the operator's own


def test_serve_command_says_why_it_refuses(prod):
    from salespilot.cli import app

    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert "would listen on 0.0.0.0" in result.output
    assert "Traceback" not in result.output
