"""vexil's feature flags: `flags.is_on("key")` from memory, kept current by one
background thread that follows the database or a `vexil serve`.

    import vexil
    flags = vexil.Flags.from_env()
    if flags.is_on("my_new_feature"):
        ...
"""

from typing import Literal, Optional, Tuple, TypedDict

__version__: str

class Error(Exception):
    """A vexil setting is wrong, or the source refused this process (the message
    says which)."""

class Health(TypedDict):
    source_up: bool
    origin: Literal["database", "server", "fallback"]
    snapshot_age: Optional[float]
    reported_at: Optional[float]

class Flags:
    """This process's flags, for the env it belongs to (VEXIL_ENV)."""

    @staticmethod
    def from_env() -> "Flags":
        """Reads VEXIL_ENV, VEXIL_FLAGS, DATABASE_URL (database mode) or VEXIL_URL and
        VEXIL_CLIENT_KEY (remote mode), VEXIL_CACHE_TTL, VEXIL_POLL_MS,
        VEXIL_START_TIMEOUT_MS, VEXIL_APP and the FLAG_* variables, and returns once
        the first full read is in (or the start timeout passed). Raises Error for a
        bad setting."""
    def is_on(self, key: str) -> bool:
        """Whether `key` is on. No I/O, no lock. An undeclared key is off (and
        logged once). Raises Error if this Flags was created before fork()."""
    def flag(self, key: str) -> "Flag":
        """A handle to one flag for hot loops."""
    def value(self, key: str) -> Optional[Tuple[bool, Literal["db", "env", "yaml"]]]:
        """(on, source) for a declared key; None for an undeclared one."""
    @property
    def env(self) -> str: ...
    def health(self) -> Health:
        """Whether the source answers, where the values come from, how old they are,
        and when this process last reported itself."""

class Flag:
    """One flag, resolved by name once."""

    @property
    def key(self) -> str: ...
    def is_on(self) -> bool: ...
    def __bool__(self) -> bool: ...
