"""What a user-namespace case (scenario key user_namespace, tag userns) must end in on a real runtime: pass
where the runtime handler advertises user namespaces, else unsupported with the evidence in its detail."""

from __future__ import annotations

from conformance.core.scenario import USERNS_TAG


def is_userns(case: dict) -> bool:
    return USERNS_TAG in case.get("tags", [])


def userns_verdict(runtime: dict) -> str:
    """The verdict every user-namespace case must get on this runtime (results.json's `runtime`)."""
    return "pass" if (runtime.get("handler_features") or {}).get("user_namespaces") else "unsupported"


def check_userns(case: dict, runtime: dict) -> None:
    """A user-namespace case: the verdict the handler's feature implies; unsupported names the handler's
    feature and what the runtime did; a pass shows the process's user namespace maps."""
    want = userns_verdict(runtime)
    assert case["verdict"] == want, case
    if want == "unsupported":
        assert "user_namespaces=false" in case["detail"] or "no runtime handlers" in case["detail"], case
    elif "error" not in case["expected"] and "any_of" not in case["expected"]:
        first = case["observed"]["first_process"]
        assert first["uid_map"] and first["uid_map"][0][0] == 0 and first["uid_map"][0][2] == 65536, case
