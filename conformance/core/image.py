"""Test image definitions: images/<name>/ with image.yaml, passwd and group."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from conformance.core import yamlsrc
from conformance.core.model import MAX_ID
from conformance.errors import InputError

IMAGE_KEYS = {"description", "user", "cmd", "source"}


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


@dataclass
class ImageDef:
    """One test image: its files and its image config User."""

    name: str
    directory: Path
    description: str = ""
    user: str | None = None  # OCI image config User, e.g. "1000", "alice", "1000:2000"
    cmd: tuple[str, ...] = ("/bin/sh",)
    passwd: list[PasswdEntry] | None = None  # None: the image has no /etc/passwd
    group: list[GroupEntry] | None = None  # None: the image has no /etc/group
    files: dict[str, bytes] = field(default_factory=dict)  # path in image -> content

    def user_by_name(self, name: str) -> PasswdEntry | None:
        return next((e for e in self.passwd or [] if e.name == name), None)

    def user_by_uid(self, uid: int) -> PasswdEntry | None:
        return next((e for e in self.passwd or [] if e.uid == uid), None)


def _parse_passwd(path: Path, text: str) -> list[PasswdEntry]:
    entries = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) != 7:
            raise InputError(path, "passwd line", f"needs 7 ':'-separated fields, got {len(parts)}", lineno)
        name, _, uid, gid = parts[:4]
        if not name:
            raise InputError(path, "name", "empty user name", lineno)
        entries.append(PasswdEntry(name, _id(path, uid, "uid", lineno), _id(path, gid, "gid", lineno)))
    return entries


def _parse_group(path: Path, text: str) -> list[GroupEntry]:
    entries = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) != 4:
            raise InputError(path, "group line", f"needs 4 ':'-separated fields, got {len(parts)}", lineno)
        name, _, gid, members = parts
        if not name:
            raise InputError(path, "name", "empty group name", lineno)
        mem = tuple(m for m in members.split(",") if m)
        entries.append(GroupEntry(name, _id(path, gid, "gid", lineno), mem))
    return entries


def _id(path: Path, text: str, field_name: str, lineno: int) -> int:
    if not text.isdigit():
        raise InputError(path, field_name, f"must be a non-negative integer, got {text!r}", lineno)
    value = int(text)
    if value > MAX_ID:
        raise InputError(path, field_name, f"{value} is outside 0..{MAX_ID}", lineno)
    return value


def _read_text(path: Path) -> str:
    """A passwd or group file as UTF-8; bad bytes are an input error naming their line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, "", f"not UTF-8: byte {data[exc.start]:#04x}", data.count(b"\n", 0, exc.start) + 1) \
            from exc


def load_image(directory: Path) -> ImageDef:
    """Load and validate images/<name>/."""
    meta_path = directory / "image.yaml"
    if not meta_path.is_file():
        raise InputError(meta_path, "", "missing image.yaml")
    meta = yamlsrc.load(meta_path) or {}
    if not isinstance(meta, dict):
        raise InputError(meta_path, "", "must be a mapping")
    yamlsrc.check_keys(meta_path, meta, IMAGE_KEYS, "")
    user = meta.get("user")
    if user is not None:
        if isinstance(user, int) and not isinstance(user, bool):
            user = str(user)
        if not isinstance(user, str) or not user or user.count(":") > 1 or not all(user.split(":")):
            raise InputError(meta_path, "user", f"must be 'uid', 'name', 'uid:gid' or 'name:group', got {user!r}",
                             meta.line_of("user"))
    cmd = meta.get("cmd", ["/bin/sh"])
    if not isinstance(cmd, list) or not cmd or not all(isinstance(c, str) for c in cmd):
        raise InputError(meta_path, "cmd", "must be a non-empty list of strings", meta.line_of("cmd"))
    description = meta.get("description", "")
    if not isinstance(description, str):
        raise InputError(meta_path, "description", "must be a string", meta.line_of("description"))
    img = ImageDef(name=directory.name, directory=directory, description=description, user=user, cmd=tuple(cmd))
    passwd_path, group_path = directory / "passwd", directory / "group"
    if passwd_path.exists():
        text = _read_text(passwd_path)
        img.passwd = _parse_passwd(passwd_path, text)
        img.files["etc/passwd"] = text.encode()
    if group_path.exists():
        text = _read_text(group_path)
        img.group = _parse_group(group_path, text)
        img.files["etc/group"] = text.encode()
    return img


def load_images(root: Path) -> dict[str, ImageDef]:
    """Load every images/<name>/ that has an image.yaml."""
    if not root.is_dir():
        raise InputError(root, "", "images directory not found")
    return {d.name: load_image(d) for d in sorted(root.iterdir()) if (d / "image.yaml").exists()}
