"""The test images into a real registry (Debian's docker-registry on loopback, started and removed here):
push, re-push skipped by digest, pull back by digest, the auth file honoured, a wrong registry refused in
one line, and the export for air-gapped clusters; through the module and the console command."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from conformance.core.catalogue import Catalogue
from conformance.core.options import default_cache
from conformance.errors import InputError, ProvisionError
from conformance.testimages import imagepush
from conformance.testimages.archive import ImageArchive, catalogue_archives
from conformance.testimages.skopeo import Skopeo
from tests.conftest import CLI, PROJECT
from tests.support.registry import free_port, loopback_registry

pytestmark = pytest.mark.runtime


@pytest.fixture(scope="module")
def tools() -> None:
    """skopeo and Debian's archive (for docker-registry); under CI=true their absence is a failure."""
    from conformance.runtimes import debian

    missing = [name for name, ok in (("skopeo", shutil.which("skopeo")), ("Debian's archive", debian.available()))
               if not ok]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"registry tests need {', '.join(missing)} in CI")
        pytest.skip(f"needs {', '.join(missing)}")


@pytest.fixture(scope="module")
def archives(tools: None) -> list[ImageArchive]:
    return catalogue_archives(Catalogue.load(PROJECT / "scenarios", PROJECT / "images"), default_cache())


@pytest.fixture
def registry(tools: None, tmp_path: Path) -> str:
    with loopback_registry(default_cache(), tmp_path) as address:
        yield address


def skopeo(folder: Path, *argv: str) -> str:
    """skopeo as the suite runs it (nothing of it on the host)."""
    return Skopeo(folder / "skopeo").run(argv, timeout=120).stdout


def test_push_then_skip_by_digest_then_pull_back_by_digest(registry: str, archives: list[ImageArchive],
                                                           tmp_path: Path) -> None:
    refs, done = imagepush.push(archives, f"{registry}/team", insecure=True)
    assert sorted(done.pushed) == sorted(refs.values()) and done.present == []
    for archive in archives:
        assert refs[archive.name] == f"{registry}/team/{archive.ref.split('/', 1)[1]}"
    again_refs, again = imagepush.push(archives, f"{registry}/team", insecure=True)
    assert again_refs == refs and again.pushed == [] and sorted(again.present) == sorted(refs.values())
    archive = next(a for a in archives if a.name == "agnhost-like")
    raw = skopeo(tmp_path, "inspect", "--raw", "--tls-verify=false", f"docker://{refs[archive.name]}")
    digest = "sha256:" + hashlib.sha256(raw.encode()).hexdigest()
    name = refs[archive.name].rsplit(":", 1)[0]
    skopeo(tmp_path, "copy", "--quiet", "--src-tls-verify=false", f"docker://{name}@{digest}",
           f"docker-archive:{tmp_path / 'back.tar'}")
    with tarfile.open(tmp_path / "back.tar") as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["Config"].removesuffix(".json").removeprefix("sha256:") == \
        archive.config_digest.removeprefix("sha256:")


def test_auth_file_is_honoured(tools: None, archives: list[ImageArchive], tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    one = [a for a in archives if a.name == "pause"]
    with loopback_registry(default_cache(), tmp_path, users={"sgp": "s3cret"}) as address:
        monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "nobody.json"))
        with pytest.raises(ProvisionError) as refused:
            imagepush.push(one, address, insecure=True)
        assert "\n" not in str(refused.value) and "REGISTRY_AUTH_FILE" in str(refused.value)
        import base64

        auth = tmp_path / "auth.json"
        auth.write_text(json.dumps({"auths": {address: {"auth": base64.b64encode(b"sgp:s3cret").decode()}}}))
        monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth))
        _, done = imagepush.push(one, address, insecure=True)
        assert len(done.pushed) == 1


def test_wrong_registry_is_refused_in_one_line(registry: str, archives: list[ImageArchive]) -> None:
    one = [a for a in archives if a.name == "pause"]
    with pytest.raises(ProvisionError) as tls:
        imagepush.push(one, registry)  # TLS on by default: a plain-HTTP registry needs IMAGE_REGISTRY_INSECURE=1
    assert "\n" not in str(tls.value) and "IMAGE_REGISTRY_INSECURE=1" in str(tls.value)
    with pytest.raises(ProvisionError) as closed:
        imagepush.push(one, f"127.0.0.1:{free_port()}", insecure=True)
    assert "\n" not in str(closed.value) and "connection refused" in str(closed.value)
    for bad in ("http://example:5000", "", "reg:5000/x@sha256:00"):
        with pytest.raises(InputError):
            imagepush.check_registry(bad)


def test_console_push_and_export(registry: str, archives: list[ImageArchive], tmp_path: Path) -> None:
    env = {**os.environ, "IMAGE_REGISTRY_INSECURE": "1"}
    res = subprocess.run([str(CLI), "images", "push", registry], capture_output=True, text=True, env=env,
                         cwd=PROJECT, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"{len(archives)} pushed, 0 already there" in res.stdout
    res = subprocess.run([str(CLI), "images", "push", f"127.0.0.1:{free_port()}"], capture_output=True, text=True,
                         env=env, cwd=PROJECT, timeout=120)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    res = subprocess.run([str(CLI), "images", "export", str(tmp_path / "out"), "--registry", registry],
                         capture_output=True, text=True, cwd=PROJECT, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = [line.split() for line in (tmp_path / "out" / "images.txt").read_text().splitlines()
             if not line.startswith("#")]
    assert len(lines) == len(archives)
    for file_name, name in lines:
        assert (tmp_path / "out" / file_name).is_file() and name.startswith(f"{registry}/sgpconf/")
