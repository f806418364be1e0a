"""Kernel modules a run caused to load are handed back: unused ones unloaded, dependents first."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from conformance.runtimes import kmodules, reaper

LINE = "{name} 16384 {users} {by} Live 0x0000000000000000\n"


def write_modules(path: Path, modules: dict[str, tuple[int, str]]) -> None:
    path.write_text("".join(LINE.format(name=n, users=u, by=b or "-") for n, (u, b) in modules.items()))


def fake_rmmod(tmp_path: Path, modules: Path, refuse: tuple[str, ...] = ()) -> str:
    """An rmmod that takes a module out of the fake /proc/modules as the kernel would: refused while it has
    users; its dependencies lose a user. Each call is logged."""
    script = tmp_path / "rmmod"
    script.write_text(f"""#!{sys.executable}
import sys
from pathlib import Path
name, path = sys.argv[1], Path({str(modules)!r})
with open({str(tmp_path / "calls")!r}, "a") as log:
    log.write(name + "\\n")
rows = [line.split() for line in path.read_text().splitlines()]
row = next(r for r in rows if r[0] == name)
if row[2] != "0" or name in {refuse!r}:
    sys.exit(1)
out = []
for r in rows:
    if r[0] == name:
        continue
    if name in r[3].split(","):
        r[2] = str(int(r[2]) - 1)
        r[3] = ",".join(b for b in r[3].split(",") if b and b != name) + "," if r[2] != "0" else "-"
    out.append(" ".join(r))
path.write_text("".join(line + "\\n" for line in out))
""")
    script.chmod(0o755)
    return str(script)


def test_loaded_modules_and_their_users(tmp_path: Path) -> None:
    modules = tmp_path / "modules"
    write_modules(modules, {"nf_conntrack": (1, "nf_nat,"), "nf_nat": (0, ""), "ext4": (2, "")})
    assert kmodules.loaded(modules) == {"nf_conntrack": 1, "nf_nat": 0, "ext4": 2}
    assert kmodules.loaded(tmp_path / "none") is None  # a kernel without loadable modules


def test_only_modules_loaded_since_and_unused_go_dependents_first(tmp_path: Path) -> None:
    modules = tmp_path / "modules"
    write_modules(modules, {"ext4": (0, ""), "bridge": (0, ""), "nf_conntrack": (1, "nf_nat,"), "nf_nat": (0, ""),
                            "overlay": (3, "")})
    rmmod = fake_rmmod(tmp_path, modules)
    unloaded = kmodules.unload_since({"ext4"}, modules, rmmod)
    assert unloaded == ["bridge", "nf_nat", "nf_conntrack"]  # nf_conntrack came free once nf_nat was gone
    assert set(kmodules.loaded(modules) or {}) == {"ext4", "overlay"}  # there before; in use
    assert "ext4" not in (tmp_path / "calls").read_text().split()


def test_a_refused_unload_is_tried_once_and_left(tmp_path: Path) -> None:
    modules = tmp_path / "modules"
    write_modules(modules, {"bridge": (0, "")})
    rmmod = fake_rmmod(tmp_path, modules, refuse=("bridge",))
    assert kmodules.unload_since(set(), modules, rmmod) == []
    assert (tmp_path / "calls").read_text().split() == ["bridge"]


def test_no_record_or_no_rmmod_unloads_nothing(tmp_path: Path) -> None:
    modules = tmp_path / "modules"
    write_modules(modules, {"bridge": (0, "")})
    assert kmodules.unload_since(None, modules, fake_rmmod(tmp_path, modules)) == []
    assert not (tmp_path / "calls").exists()


def test_a_dead_runs_reaper_unloads_what_it_loaded(tmp_path: Path, monkeypatch) -> None:
    """SIGKILLed after its engine loaded netfilter: the reaper unloads those modules, not the ones there before."""
    modules, state = tmp_path / "modules", tmp_path / "state"
    write_modules(modules, {"ext4": (0, "")})
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    record = reaper.record_host(state, pid, tmp_path / "v1", modules)
    assert record is not None
    write_modules(modules, {"ext4": (0, ""), "nf_conntrack": (1, "nf_nat,"), "nf_nat": (0, "")})
    rmmod = fake_rmmod(tmp_path, modules)
    real = kmodules.unload_since
    monkeypatch.setattr(kmodules, "unload_since", lambda before: real(before, modules, rmmod))
    removed = reaper.reap(state, pid, tmp_path / "v1")
    assert [r for r in removed if r.startswith("kernel module")] == [
        "kernel module nf_nat (loaded by the run, unused)", "kernel module nf_conntrack (loaded by the run, unused)"]
    assert set(kmodules.loaded(modules) or {}) == {"ext4"} and not record.exists()
