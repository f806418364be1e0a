"""Typed errors. Each carries what a person needs to act on it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class SuiteError(Exception):
    """Base class: the suite, the runtime or the input broke (exit code 2)."""


class InputError(SuiteError):
    """A scenario or image file is malformed. Names the file, line and field."""

    def __init__(self, path: Path | str, field: str, message: str, line: int | None = None):
        self.path = Path(path)
        self.field = field
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line else str(self.path)
        named = field and field != str(path)  # an option (CRI_ENDPOINT, ...) is both the place and the field
        super().__init__(f"{where}: {field}: {message}" if named else f"{where}: {message}")


class CommandError(SuiteError):
    """An external command failed. Carries the argv, exit code and stderr."""

    def __init__(self, argv: Sequence[str], returncode: int, stdout: str = "", stderr: str = ""):
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        tail = (stderr or stdout).strip()[-2000:]
        super().__init__(f"command failed (exit {returncode}): {' '.join(self.argv)}\n{tail}")


class ProvisionError(SuiteError):
    """A runtime could not be provided or started."""


class RuntimeBroken(SuiteError):
    """The runtime under test stopped answering or answered nonsense."""


class Stopped(SuiteError):
    """The run is ending (Ctrl-C, a failure that stops the run): waits give up at once."""
