"""A call site as the runbook writes it. Prints the flag's value, waits for a line on
stdin (the operator changed the flag), then prints the value once it changed."""

import json
import sys
import time

from app.services.flags import flags

before = flags.is_on("my_new_feature")
print(json.dumps(before), flush=True)
sys.stdin.readline()
deadline = time.monotonic() + 20
while flags.is_on("my_new_feature") == before and time.monotonic() < deadline:
    time.sleep(0.01)
print(json.dumps(flags.is_on("my_new_feature")), flush=True)
