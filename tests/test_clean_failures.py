"""Mistakes and interruptions end in one readable line: no traceback reaches the user."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys

from typer.testing import CliRunner

from salespilot.cli import app
from salespilot.serving.state import StateHolder
from salespilot.settings import Settings


def test_a_missing_history_is_one_log_line_without_a_traceback(tmp_path, caplog):
    holder = StateHolder(Settings(state_dir=tmp_path, data_dir=tmp_path / "nowhere"))
    with caplog.at_level(logging.ERROR, logger="salespilot"):
        assert holder.reload() is None
    assert "no history folder" in holder.last_error
    failed = [r for r in caplog.records if "reload failed" in r.getMessage()]
    assert failed and all(r.exc_info is None for r in failed)


def test_priorities_without_a_history_says_what_to_do_in_one_line(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("SALESPILOT_DATA_DIR", str(tmp_path / "nowhere"))
    r = CliRunner().invoke(app, ["priorities", "R00017"])
    assert r.exit_code == 1
    assert "Traceback" not in r.output and "reload failed" not in r.output
    assert r.output.strip().startswith("error: no history folder") and "salespilot demo" in r.output


def test_ctrl_c_ends_a_command_with_130_and_no_traceback(tmp_path):
    """A real SIGINT to a real command (``import`` waiting on its standard input)."""
    env = {**os.environ, "SALESPILOT_STATE_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _WAIT_THEN_INTERRUPTIBLE],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "waiting"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "interrupted" in err


# A command of the app that blocks until interrupted, run through the entry point users run.
_WAIT_THEN_INTERRUPTIBLE = """
import sys, time, typer
from salespilot.cli import app, main

@app.command("wait-for-test")
def wait() -> None:
    print("waiting", flush=True)
    time.sleep(60)

sys.argv = ["salespilot", "wait-for-test"]
main()
"""
