"""Binaries users hand the suite (K8S_BIN_DIR, CRIO_BIN_DIR, CONTAINERD_BIN_DIR, OCI_BIN_DIR, ETCD_BIN): each
followed through its links (absolute, relative, links to links, out of the folder) to the file it names, and
checked before anything is built: present, a regular file, executable, an ELF binary of this machine's
architecture, and, where it goes into an image, linked only against libraries that image has."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from conformance.errors import ProvisionError

# uname -m -> ELF e_machine as pyelftools names it
MACHINES = {"x86_64": "EM_X86_64", "aarch64": "EM_AARCH64", "arm64": "EM_AARCH64", "ppc64le": "EM_PPC64",
            "s390x": "EM_S390", "riscv64": "EM_RISCV"}


@dataclass(frozen=True)
class Executable:
    """A binary as the suite will use it: the real file behind the name, and how it is linked."""

    name: Path  # the path the user gave (maybe a link)
    real: Path  # the file it names
    interpreter: str | None  # PT_INTERP (None: statically linked)
    needed: tuple[str, ...]  # DT_NEEDED sonames


def real_file(path: Path, label: str) -> Path:
    """The file `path` names after every link, executable; ProvisionError in one line naming what is wrong."""
    if not os.path.lexists(path):
        raise ProvisionError(f"{label}: {path} is missing")
    real = Path(os.path.realpath(path))
    if not real.exists():
        raise ProvisionError(f"{label}: {path} is a link to {real}, which does not exist")
    if not real.is_file():
        raise ProvisionError(f"{label}: {path} is not a file ({real})")
    if not os.access(real, os.X_OK):
        named = f" (through the link to {real})" if real != path.absolute() else ""
        raise ProvisionError(f"{label}: {path} is not executable{named}")
    return real


def inspect(path: Path, label: str) -> Executable:
    """The real file behind `path`, checked to be an ELF binary for this machine."""
    real = real_file(path, label)
    want = MACHINES.get(platform.machine())
    try:
        with real.open("rb") as fh:
            elf = ELFFile(fh)
            machine = elf["e_machine"]
            interp = next((seg.get_interp_name() for seg in elf.iter_segments() if seg["p_type"] == "PT_INTERP"),
                          None)
            dynamic = next((s for s in elf.iter_sections() if isinstance(s, DynamicSection)), None)
            needed = tuple(t.needed for t in dynamic.iter_tags() if t.entry.d_tag == "DT_NEEDED") if dynamic else ()
    except (ELFError, OSError) as exc:
        if real.read_bytes()[:2] == b"#!":
            return Executable(path, real, None, ())  # a script: its interpreter is the image's business
        raise ProvisionError(f"{label}: {path} is not an executable binary ({exc})") from None
    if want is not None and machine != want:
        raise ProvisionError(f"{label}: {path} is built for {machine.removeprefix('EM_')}, this machine is "
                             f"{platform.machine()}")
    return Executable(path, real, interp, needed)


def check_libraries(exe: Executable, label: str, present: set[str], where: str) -> None:
    """A dynamically linked binary whose loader or libraries `where` lacks is refused, naming them."""
    missing = [n for n in exe.needed if n not in present]
    if exe.interpreter and Path(exe.interpreter).name not in present:
        missing.insert(0, exe.interpreter)
    if missing:
        raise ProvisionError(f"{label}: {exe.name} is dynamically linked against {', '.join(missing)}, which "
                             f"{where} lacks (use a statically linked build, or one for Debian bookworm)")
