"""The oracle: the identity a case must produce, computed from the image files, the security
context and the policy, as the kubelet and the runtimes define it (behaviours.md 9-11, 19-21, 27-28)."""

from __future__ import annotations

from dataclasses import dataclass

from conformance.core.image import ImageDef
from conformance.core.model import USERNS_LENGTH, Expectation, Identity
from conformance.core.scenario import Scenario


@dataclass(frozen=True)
class CRIUser:
    """The user fields the kubelet puts in LinuxContainerSecurityContext."""

    run_as_user: int | None
    run_as_username: str
    run_as_group: int | None


def image_user(config_user: str | None) -> tuple[int | None, str]:
    """(uid, username) from an image config User the way CRI ImageStatus reports it:
    the ':group' part is dropped; empty means root."""
    user = (config_user or "").split(":")[0]
    if not user:
        return None, ""
    if user.isdigit():
        return int(user), ""
    return None, user


def kubelet_user(scn: Scenario, image_uid: int | None, image_username: str) -> CRIUser:
    """The kubelet always sends a user: effective runAsUser, else the image uid, else the image
    username, else 0 (behaviours.md item 11)."""
    if scn.run_as_user is not None:
        return CRIUser(scn.run_as_user, "", scn.run_as_group)
    if image_uid is not None:
        return CRIUser(image_uid, "", scn.run_as_group)
    if image_username:
        return CRIUser(None, image_username, scn.run_as_group)
    return CRIUser(0, "", scn.run_as_group)


def supplemental_groups(scn: Scenario) -> list[int]:
    """fsGroup folded in front of supplementalGroups, as the kubelet sends them."""
    groups = [scn.pod.fs_group] if scn.pod.fs_group is not None else []
    return groups + list(scn.pod.supplemental_groups)


def expected(scn: Scenario, image: ImageDef, policy: str) -> Expectation:
    """Expected identity of the first (and every exec'd) process for `policy`.

    In a user namespace (hostUsers: false) the kubelet maps container IDs 0..USERNS_LENGTH-1. An ID outside
    that range cannot be set in there at all (setgroups(2), setgid(2), setuid(2) fail with EINVAL), so the
    container's process cannot start (behaviours.md E18): the oracle names StartContainer, where containerd
    fails; a runtime that runs the OCI runtime's create at CreateContainer (CRI-O) fails there instead,
    which a scenario allows with a runtime_choice."""
    uid, username = image_user(image.user)
    user = kubelet_user(scn, uid, username)
    if user.run_as_username:
        entry = image.user_by_name(user.run_as_username)
        if entry is None:
            return Expectation(error="CreateContainer")
        uid, name, passwd_gid = entry.uid, entry.name, entry.gid
    else:
        assert user.run_as_user is not None
        entry = image.user_by_uid(user.run_as_user)
        uid = user.run_as_user
        name, passwd_gid = (entry.name, entry.gid) if entry else (None, 0)
    gid = user.run_as_group if user.run_as_group is not None else passwd_gid
    groups = {gid, *supplemental_groups(scn)}
    if policy != "Strict" and name is not None:
        groups |= {g.gid for g in image.group or [] if name in g.members}
    if scn.user_namespace and max(uid, gid, *groups) >= USERNS_LENGTH:
        return Expectation(error="StartContainer")
    return Expectation(identity=Identity(uid, gid, frozenset(groups)))

