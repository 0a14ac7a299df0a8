"""The runbook's usage, literally: an application laid out as app/services/flags.py
and a call site doing `from app.services.flags import flags;
flags.is_on("my_new_feature")`, run as its own Python process in each mode, sees the
runbook's Option A (its UPDATE, verbatim)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Server

APP = Path(__file__).parent / "runbook_app"

RUNBOOK_UPDATE = (
    "UPDATE console_feature_flags SET value=1, updated_at=CURRENT_TIMESTAMP "
    "WHERE flag_key='my_new_feature' AND env='prod';"
)


@pytest.mark.parametrize("mode", ["database", "server"])
def test_the_runbooks_call_site(site, mode):
    with open(site.flags_file, "a") as file:
        file.write("\nmy_new_feature:\n  default: false\n  description: \"The runbook's example\"\n  risk: low\n")
    site.run("flip", "my_new_feature", "--env", "prod", "--on", "--as", "root")
    site.run("flip", "my_new_feature", "--env", "prod", "--off", "--as", "root")
    env = {"PATH": os.environ["PATH"], "VEXIL_ENV": "prod", "VEXIL_FLAGS": str(site.flags_file)}
    server = None
    if mode == "database":
        env.update(DATABASE_URL=site.database_url, FLAG_CONSOLE_FEATURE_FLAGS_DB="1")
    else:
        server = Server(site)
        env.update(VEXIL_URL=server.url, VEXIL_CLIENT_KEY=server.client_key())
    caller = subprocess.Popen(
        [sys.executable, "checkout.py"],
        cwd=APP,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert json.loads(caller.stdout.readline()) is False, caller.stderr.read()
        site.execute(RUNBOOK_UPDATE)
        caller.stdin.write("flipped\n")
        caller.stdin.flush()
        assert json.loads(caller.stdout.readline()) is True, "the UPDATE never reached the application"
        assert caller.wait(timeout=20) == 0, caller.stderr.read()
    finally:
        caller.kill()
        if server:
            server.kill()
