"""The Python side of `cargo xtask propagation … remote`: a process with the vexil
package that prints, one JSON line each, when its flags are ready and when
`dark_mode` changes, with the wall-clock time it saw the change. It looks every
millisecond (the package has no change callback), so its figures carry up to 1 ms
of that."""

import json
import time

import vexil

flags = vexil.Flags.from_env()
print(json.dumps({"ready": True}), flush=True)
last = flags.is_on("dark_mode")
while True:
    on = flags.is_on("dark_mode")
    if on != last:
        print(json.dumps({"flag": "dark_mode", "on": on, "at": time.time_ns()}), flush=True)
        last = on
    time.sleep(0.001)
