"""The runbook's flags module: `from app.services.flags import flags`, then
`flags.is_on("my_new_feature")`. One vexil.Flags per process, made at import; its
settings come from the environment (docs/python.md)."""

import vexil

flags = vexil.Flags.from_env()
