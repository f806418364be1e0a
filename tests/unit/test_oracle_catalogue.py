"""The oracle on the catalogue's new images: uid:gid and name:group USER, missing files, same-name groups."""

from __future__ import annotations

from pathlib import Path

from conformance.core.image import load_images
from conformance.core.model import Identity
from conformance.core.oracle import expected, image_user
from conformance.core.scenario import ContainerContext, PodContext, Scenario

PROJECT = Path(__file__).resolve().parents[2]
IMAGES = load_images(PROJECT / "images")


def run(image: str, policy: str, pod: PodContext | None = None, ctr: ContainerContext | None = None):
    scn = Scenario(name="t", path=Path("t.yaml"), image=image, source="t", pod=pod or PodContext(),
                   container=ctr or ContainerContext())
    return expected(scn, IMAGES[image], policy)


def test_image_user_drops_the_group_part() -> None:
    assert image_user("1003:1004") == (1003, "")
    assert image_user("www-data:1004") == (None, "www-data")


def test_uid_gid_user_keeps_only_the_uid() -> None:
    assert run("user-uid-group", "Merge").identity == Identity(1003, 1003, frozenset({1003, 60100}))
    assert run("user-uid-group", "Strict", ctr=ContainerContext(run_as_group=1004)).identity == \
        Identity(1003, 1004, frozenset({1004}))


def test_name_group_user_is_resolved_by_name() -> None:
    assert run("user-name-group", "Merge").identity == Identity(33, 33, frozenset({33, 60200}))


def test_missing_username_is_an_error_and_missing_passwd_is_gid_0() -> None:
    assert run("user-missing", "Strict").error == "CreateContainer"
    assert run("no-passwd", "Merge").identity == Identity(0, 0, frozenset({0}))
    assert run("no-etc-files", "Merge", PodContext(run_as_user=7)).identity == Identity(7, 0, frozenset({0}))


def test_membership_is_by_exact_name_in_any_position() -> None:
    assert run("multi-group", "Merge", PodContext(run_as_user=1000)).identity.groups == \
        frozenset({1000, 3100, 3200, 3300, 3400})


def test_same_name_group_is_merged_by_the_oracle() -> None:
    """The oracle follows CRI-O and the containerd fix (#11937): a same-name group is a membership."""
    assert run("same-name-group", "Merge").identity == Identity(2, 1, frozenset({1, 2}))
    assert run("same-name-group", "Strict").identity == Identity(2, 1, frozenset({1}))
