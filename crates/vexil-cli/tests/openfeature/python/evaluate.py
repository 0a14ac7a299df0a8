"""An application evaluating a vexil flag through OpenFeature's own OFREP provider.

It reads one flag key per line on stdin and prints, per line, the details of its
boolean evaluation as JSON: what the crate's test (tests/it/openfeature.rs) checks
after a flip made with `vexil flip` and after the client key is revoked.

VEXIL_URL is the server, VEXIL_CLIENT_KEY the client key it sends.
"""

import json
import os
import sys

from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext

key = os.environ["VEXIL_CLIENT_KEY"]
api.set_provider(
    OFREPProvider(
        os.environ["VEXIL_URL"],
        headers_factory=lambda: {"Authorization": f"Bearer {key}"},
        timeout=5.0,
    )
)
client = api.get_client()
context = EvaluationContext(targeting_key="user-1", attributes={"plan": "gold"})

for line in sys.stdin:
    flag = line.strip()
    if not flag:
        continue
    details = client.get_boolean_details(flag, False, context)
    print(
        json.dumps(
            {
                "value": details.value,
                "reason": str(details.reason.value if hasattr(details.reason, "value") else details.reason),
                "variant": details.variant,
                "error_code": details.error_code.value if details.error_code else None,
            }
        ),
        flush=True,
    )
