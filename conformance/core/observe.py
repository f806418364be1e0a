"""What the suite reads inside a container: `id` output and /proc/<pid>/status, as one script."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

BEGIN, END = "SGP-BEGIN", "SGP-END"
# Prints the identity of the shell running it: `id` (a child, same credentials), the
# Uid/Gid/Groups lines of its own /proc/$$/status and its user namespace's uid_map and gid_map.
PROBE = (
    f'echo {BEGIN}; echo "SGP-ID $(id)"; '
    'while read -r k v; do case "$k" in Uid:|Gid:|Groups:) echo "SGP-STATUS $k $v";; esac; '
    'done < /proc/$$/status; '
    'for m in uid_map gid_map; do while read -r a b c; do echo "SGP-MAP $m $a $b $c"; done < /proc/$$/$m; done; '
    f'echo {END}'
)
# Where a first process that exits after the probe also leaves its block: the kubelet's termination message file
# (terminationMessagePath's default), which the kubelet reads when it sees the exit and reports with it in
# state.terminated.message; the node target mounts a file of its own there. A file written before the process
# exits is complete when the exit is seen; a log is written by the runtime's log copier, which may still be
# draining the container's output then. The block starts on a line of its own (the kubelet puts the runtime's
# message first). A block too large for the kubelet's share of a pod's messages (12 KiB over its containers)
# leaves its size instead: the log is then read until its block has that size.
MESSAGE_PATH = "/dev/termination-log"
MESSAGE_MAX = 2000
SIZE = "SGP-BYTES"
EXITING_PROBE = (f'sgp=$({PROBE}); echo "$sgp"; '
                 f'if [ ${{#sgp}} -le {MESSAGE_MAX} ]; then printf "\\n%s\\n" "$sgp"; '
                 f'else echo "{SIZE} ${{#sgp}}"; fi 2>/dev/null > {MESSAGE_PATH}')
HOST_MAP = ((0, 0, 4294967295),)  # the initial user namespace's map: not in a user namespace of its own


@dataclass
class ProcessIdentity:
    """One process's identity as `id` and the kernel show it."""

    id_line: str = ""
    id_uid: int | None = None
    id_gid: int | None = None
    id_groups: list[int] = field(default_factory=list)
    status_uid: list[int] = field(default_factory=list)
    status_gid: list[int] = field(default_factory=list)
    status_groups: list[int] = field(default_factory=list)
    uid_map: list[tuple[int, int, int]] = field(default_factory=list)  # (inside, outside, length) lines
    gid_map: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def in_userns(self) -> bool:
        """Its user namespace is not the host's (the maps are read and are not the initial identity map)."""
        return bool(self.uid_map) and tuple(self.uid_map) != HOST_MAP

    def to_json(self) -> dict:
        out: dict = {
            "id": self.id_line,
            "status": {"Uid": self.status_uid, "Gid": self.status_gid, "Groups": self.status_groups},
        }
        if self.in_userns or (self.gid_map and tuple(self.gid_map) != HOST_MAP):
            out["uid_map"] = [list(m) for m in self.uid_map]
            out["gid_map"] = [list(m) for m in self.gid_map]
        return out


class ProbeError(ValueError):
    """The probe output is missing or garbled."""


def _ids(text: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", text)]


def parse_id(line: str) -> tuple[int, int, list[int]]:
    """'uid=1000(u) gid=3000 groups=3000,4000(x)' -> (1000, 3000, [3000, 4000])."""
    uid = re.search(r"\buid=(\d+)", line)
    gid = re.search(r"\bgid=(\d+)", line)
    if not uid or not gid:
        raise ProbeError(f"cannot parse id output: {line!r}")
    groups_part = re.search(r"\bgroups=(\S*)", line)
    groups = [int(g) for g in re.findall(r"(?:^|,)(\d+)", groups_part.group(1))] if groups_part else []
    return int(uid.group(1)), int(gid.group(1)), groups


def parse_probe(text: str) -> ProcessIdentity:
    """Parse the last complete probe block in `text` (a container log or exec output)."""
    block = block_text(text)
    if block is None:
        raise ProbeError("probe output incomplete:\n" + text[-800:])
    ident = ProcessIdentity()
    for line in block.splitlines()[1:-1]:
        if line.startswith("SGP-ID "):
            ident.id_line = line[len("SGP-ID ") :].strip()
            ident.id_uid, ident.id_gid, ident.id_groups = parse_id(ident.id_line)
        elif line.startswith("SGP-STATUS "):
            _, key, *rest = line.split(maxsplit=2)
            values = _ids(rest[0]) if rest else []
            if key == "Uid:":
                ident.status_uid = values
            elif key == "Gid:":
                ident.status_gid = values
            elif key == "Groups:":
                ident.status_groups = values
        elif line.startswith("SGP-MAP "):
            parts = line.split()
            if len(parts) == 5 and all(x.isdigit() for x in parts[2:]):
                entry = (int(parts[2]), int(parts[3]), int(parts[4]))
                (ident.uid_map if parts[1] == "uid_map" else ident.gid_map).append(entry)
    if not ident.id_line or not ident.status_uid or not ident.status_gid:
        raise ProbeError("probe output lacks id or /proc status lines:\n" + text[-800:])
    return ident


def block_text(text: str) -> str | None:
    """The last complete probe block in `text`, its lines joined as the probe printed them; None if none."""
    lines = [_strip_cri_log(line) for line in text.splitlines()]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    starts = [i for i, line in enumerate(lines[: ends[-1]]) if line.strip() == BEGIN] if ends else []
    return "\n".join(lines[starts[-1] : ends[-1] + 1]) if starts else None


def exited_block(message: str, log: str) -> str | None:
    """The block of a probe whose process exited (EXITING_PROBE): its termination message where that holds it;
    else its log, once the log's block has the size the message gives (None until then: the runtime is still
    copying the output). ProbeError where neither can hold it: the probe did not run to its end."""
    if END in message:
        return message
    size = re.search(rf"^{SIZE} (\d+)$", message, re.MULTILINE)
    block = block_text(log)
    if size is None:
        if block is not None:
            return log
        raise ProbeError(f"the process exited without its probe block in its termination message or log:\n"
                         f"message: {message[-400:]!r}\nlog: {log[-400:]!r}")
    return log if block is not None and len(block) == int(size.group(1)) else None


def block_source(message: str) -> str:
    """Where exited_block took the block from."""
    return "termination message" if END in message else "log"


CRI_LOG = re.compile(r"^\S+ (stdout|stderr) [FP] ?")


def _strip_cri_log(line: str) -> str:
    """'2026-...Z stdout F text' -> 'text' (CRI log format); other lines unchanged."""
    return CRI_LOG.sub("", line, count=1)
