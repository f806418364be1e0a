import hashlib
from pathlib import Path

import pytest

from conformance.core.image import load_images
from conformance.runtimes.busybox import find as find_busybox
from conformance.testimages.archive import build

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def busybox() -> Path:
    """The static busybox the suite builds images from (the host's, or Debian's fetched into the cache)."""
    return find_busybox()


def test_build_is_deterministic(tmp_path: Path, busybox: Path) -> None:
    images = load_images(PROJECT / "images")
    for name, image in images.items():
        a = build(image, tmp_path / "a", busybox)
        b = build(image, tmp_path / "b", busybox)
        assert a.config_digest == b.config_digest and a.ref == b.ref, name
        assert hashlib.sha256(a.path.read_bytes()).digest() == hashlib.sha256(b.path.read_bytes()).digest()


def test_image_content(tmp_path: Path, busybox: Path) -> None:
    import json
    import tarfile

    image = load_images(PROJECT / "images")["critest-like"]
    built = build(image, tmp_path, busybox)
    with tarfile.open(built.path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        config = json.load(tar.extractfile(manifest[0]["Config"]))
        layer = tarfile.open(fileobj=tar.extractfile(manifest[0]["Layers"][0]))
        names = layer.getnames()
    assert manifest[0]["RepoTags"] == [built.ref]
    assert config["config"]["User"] == "1000"
    assert "etc/group" in names and "etc/passwd" in names and "bin/busybox" in names
