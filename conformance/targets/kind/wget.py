"""A stand-in for `wget` as debootstrap calls it (`wget [options] -O <dest> <url>`), so that a node base is made
on a host without wget: the download goes through Python's HTTP client
(this module imports nothing heavy: debootstrap starts it once per file).

debootstrap runs with `--no-check-gpg` (so neither is gpgv needed on the host) and the chain of trust moves
here: a suite's `InRelease` is written only if it carries a valid signature by one of Debian's archive keys
pinned by the project (debian.verify_release, as for every package the suite fetches), and an unsigned
`Release` or a detached `Release.gpg` is refused, so debootstrap cannot fall back to one. debootstrap then
checks `Packages` against that Release and every .deb against `Packages` itself, as it always does.
"""

from __future__ import annotations

import os
import shlex
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from conformance.errors import ProvisionError

UNSIGNED = ("Release", "Release.gpg")
# the exit code wget gives when the server answers with an error
SERVER_ERROR = 8
USAGE_ERROR = 2
LAUNCHER = "#!/bin/sh\nPYTHONPATH={project} exec {python} -m conformance.targets.kind.wget \"$@\"\n"


def parse(argv: Sequence[str]) -> tuple[Path, str]:
    """(destination, URL) of a `wget ... -O <dest> <url>` command line; the other options are ignored."""
    dest: str | None = None
    urls: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "-O":
            dest = next(args, None)
        elif arg.startswith("--output-document="):
            dest = arg.split("=", 1)[1]
        elif not arg.startswith("-"):
            urls.append(arg)
    if not dest or len(urls) != 1:
        raise ValueError(f"expected `-O <file> <url>`, got {' '.join(argv)!r}")
    return Path(dest), urls[0]


def checked(url: str, data: bytes) -> bytes:
    """`data` as it may reach debootstrap: a signed InRelease, never an unsigned Release (ProvisionError)."""
    name = url.rsplit("/", 1)[-1]
    if name == "InRelease":
        from conformance.runtimes import debian  # only here: debootstrap starts this once per file it fetches

        debian.verify_release(data, url)
    elif name in UNSIGNED:
        raise ProvisionError(f"{url}: refused: only an InRelease signed by a Debian archive key is accepted")
    return data


def get(url: str, timeout: float = 600) -> bytes:
    """The body at `url` (this module stays light: it is started once per file debootstrap fetches)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read()
    except (urllib.error.URLError, OSError) as exc:
        raise ProvisionError(f"cannot download {url}: {getattr(exc, 'reason', exc)}") from exc


def write(dest: Path, data: bytes) -> None:
    tmp = dest.with_name(dest.name + ".sgp-partial")
    tmp.write_bytes(data)
    os.replace(tmp, dest)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        dest, url = parse(list(sys.argv[1:] if argv is None else argv))
    except ValueError as exc:
        print(f"wget (sgp-conformance): {exc}", file=sys.stderr)
        return USAGE_ERROR
    try:
        write(dest, checked(url, get(url)))
    except (ProvisionError, OSError) as exc:
        print(f"wget (sgp-conformance): {exc}", file=sys.stderr)
        return SERVER_ERROR
    return 0


def install(folder: Path, project: str, python: str) -> Path:
    """`folder/wget`: the launcher of this stand-in (put `folder` first on debootstrap's PATH)."""
    folder.mkdir(parents=True, exist_ok=True)
    launcher = folder / "wget"
    launcher.write_text(LAUNCHER.format(project=shlex.quote(project), python=shlex.quote(python)))
    launcher.chmod(0o755)
    return launcher


if __name__ == "__main__":
    sys.exit(main())
