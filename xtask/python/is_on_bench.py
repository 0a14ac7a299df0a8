"""`cargo xtask python-bench`'s measuring side: `flags.is_on(key)` of the vexil
package with 1,000 flags, next to a plain `dict.get` on the same keys and Unleash's
Python SDK (`UnleashClient.is_enabled`, offline from a bootstrap) in the same run.
Prints one JSON object: nanoseconds per call, one list per measure, one value per
round (each round the median of 5 timeit repeats)."""

import json
import statistics
import sys
import tempfile
import timeit

import vexil

FLAGS = 1000
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
CALLS = 1_000_000


def per_call(stmt: str, globals_: dict, calls: int) -> float:
    times = timeit.repeat(stmt, globals=globals_, number=calls, repeat=5)
    return statistics.median(times) / calls * 1e9


flags = vexil.Flags.from_env()
keys = [f"flag_{i:04d}" for i in range(FLAGS)]
plain = {key: i % 2 == 0 for i, key in enumerate(keys)}
key = keys[616]
handle = flags.flag(key)
assert flags.is_on(key) is plain[key] is handle.is_on() is True, "the bench's flags file"
assert flags.is_on(keys[617]) is False

unleash = None
try:
    from UnleashClient import UnleashClient
    from UnleashClient.cache import FileCache

    cache = FileCache("vexil-bench", directory=tempfile.mkdtemp())
    cache.bootstrap_from_dict(
        {
            "version": 1,
            "features": [
                {
                    "name": k,
                    "enabled": i % 2 == 0,
                    "strategies": [{"name": "default", "parameters": {}}],
                    "type": "release",
                    "project": "default",
                }
                for i, k in enumerate(keys)
            ],
        }
    )
    # Nothing listens on port 9: no fetch, no metrics, no registration.
    unleash = UnleashClient(
        url="http://127.0.0.1:9",
        app_name="vexil-bench",
        cache=cache,
        disable_metrics=True,
        disable_registration=True,
    )
    unleash.initialize_client(fetch_toggles=False)
    assert unleash.is_enabled(key) is True and unleash.is_enabled(keys[617]) is False
except ImportError:
    pass

results = {"loop": [], "dict_get": [], "is_on": [], "flag_is_on": [], "unleash_is_enabled": []}
for _ in range(ROUNDS):
    results["loop"].append(per_call("pass", {}, CALLS))
    results["dict_get"].append(per_call("plain.get(key)", {"plain": plain, "key": key}, CALLS))
    results["is_on"].append(per_call("flags.is_on(key)", {"flags": flags, "key": key}, CALLS))
    results["flag_is_on"].append(per_call("handle.is_on()", {"handle": handle}, CALLS))
    if unleash is not None:
        results["unleash_is_enabled"].append(
            per_call("client.is_enabled(key)", {"client": unleash, "key": key}, CALLS // 50)
        )
results["python"] = sys.version.split()[0]
print(json.dumps(results))
