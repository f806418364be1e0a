"""Scenario files (scenarios/*.yaml): loading and validation, errors with file, line and field."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from conformance.core import yamlsrc
from conformance.core.image import ImageDef
from conformance.core.model import POLICIES, Expectation, Identity
from conformance.core.yamlsrc import LineDict
from conformance.errors import InputError

TOP_KEYS = {"name", "description", "source", "tags", "image", "pod", "container", "policies", "expect",
            "known_failures", "oracle", "raw_cri", "first_process", "runtime_choice", "user_namespace"}
POD_KEYS = {"runAsUser", "runAsGroup", "supplementalGroups", "fsGroup"}
CONTAINER_KEYS = {"runAsUser", "runAsGroup"}
EXPECT_KEYS = {"uid", "gid", "groups", "error", "message"}
CHOICE_KEYS = {"why", "source"}
KNOWN_KEYS = {"runtime", "versions", "policies", "link", "reason"}
RAW_CRI_KEYS = {"policy_value", "omit_user"}
FIRST_PROCESS_KEYS = {"exit"}
RESTART_TAG = "restart"  # the node target restarts the runtime between two status reads
USERNS_TAG = "userns"  # added to every user_namespace scenario (a marker, and in results.json)
EXPECTED_ERRORS = {"CreateContainer", "RunPodSandbox", "StartContainer"}
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")


@dataclass(frozen=True)
class PodContext:
    run_as_user: int | None = None
    run_as_group: int | None = None
    supplemental_groups: tuple[int, ...] = ()
    fs_group: int | None = None


@dataclass(frozen=True)
class ContainerContext:
    run_as_user: int | None = None
    run_as_group: int | None = None


@dataclass(frozen=True)
class KnownFailure:
    """An upstream issue that makes this scenario fail on some runtime versions."""

    runtime: str
    versions: str  # e.g. ">=2.0", ">=2.0,<2.3", "*"
    policies: tuple[str, ...]
    link: str
    reason: str


@dataclass(frozen=True)
class RawCRI:
    """Node-target-only requests no kubelet would send."""

    policy_value: int | None = None  # raw enum value, e.g. 2
    omit_user: bool = False  # send run_as_group without run_as_user/run_as_username


@dataclass(frozen=True)
class RuntimeChoice:
    """The CRI and KEP-3619 leave this case open: a runtime may take any of the listed outcomes."""

    why: str
    source: str


@dataclass
class Scenario:
    name: str
    path: Path
    image: str
    source: str
    description: str = ""
    tags: tuple[str, ...] = ()
    pod: PodContext = field(default_factory=PodContext)
    container: ContainerContext = field(default_factory=ContainerContext)
    policies: tuple[str, ...] = POLICIES
    expect: dict[str, Expectation] = field(default_factory=dict)
    expect_lines: dict[str, int] = field(default_factory=dict)
    known_failures: tuple[KnownFailure, ...] = ()
    oracle: bool = True  # False: the expectation is runtime-specific, lint does not compare
    raw_cri: RawCRI | None = None
    first_exit: int | None = None  # first_process.exit: the first process exits with this code after the probe
    choice: RuntimeChoice | None = None
    choices: dict[str, tuple[Expectation, ...]] = field(default_factory=dict)  # policy -> allowed outcomes
    user_namespace: bool = False  # the pod runs in its own user namespace (hostUsers: false)

    def outcomes(self, policy: str) -> tuple[Expectation, ...]:
        """Every outcome the case may end in: the allowed ones of a runtime_choice, else the one expected."""
        return self.choices.get(policy) or (self.expect[policy],)

    def may_fail_at(self, calls: tuple[str, ...], policy: str | None = None) -> bool:
        """Some outcome the case may end in (under `policy`; None: any policy) is an error at one of `calls`
        (RunPodSandbox, CreateContainer, StartContainer)."""
        policies = self.policies if policy is None else (policy,)
        return any(o.error in calls for p in policies for o in self.outcomes(p))

    def sandbox_refusal_is_evidence(self, policy: str | None = None) -> bool:
        """A refused sandbox is evidence, not an error: the scenario allows it (under `policy`; None: any), or
        it asks for a user namespace (a handler without them refuses it: the verdict is then unsupported)."""
        return self.user_namespace or self.may_fail_at(("RunPodSandbox",), policy)

    def expected_json(self, policy: str) -> dict:
        """The expectation as results.json records it ({"any_of": [...]} for a runtime_choice)."""
        if policy in self.choices:
            assert self.choice is not None
            return {"any_of": [o.to_json() for o in self.choices[policy]], "why": self.choice.why,
                    "choice_source": self.choice.source}
        return self.expect[policy].to_json()

    @property
    def restart(self) -> bool:
        """The case restarts the runtime daemon (tag `restart`)."""
        return RESTART_TAG in self.tags

    @property
    def run_as_user(self) -> int | None:
        return self.container.run_as_user if self.container.run_as_user is not None else self.pod.run_as_user

    @property
    def run_as_group(self) -> int | None:
        return self.container.run_as_group if self.container.run_as_group is not None else self.pod.run_as_group


def _str(path: Path, data: LineDict, key: str, required: bool = False) -> str:
    if key not in data:
        if required:
            raise InputError(path, key, "is required", data.line)
        return ""
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        raise InputError(path, key, f"must be a non-empty string, got {value!r}", data.line_of(key))
    return value


def _mapping(path: Path, data: LineDict, key: str) -> LineDict:
    value = data.get(key)
    if value is None:
        value = LineDict()
        value.line, value.key_lines = data.line_of(key), {}
    if not isinstance(value, LineDict):
        raise InputError(path, key, f"must be a mapping, got {type(value).__name__}", data.line_of(key))
    return value


def _policy(path: Path, value: object, field_name: str, line: int) -> str:
    if value not in POLICIES:
        raise InputError(path, field_name, f"unknown policy {value!r} (allowed: {', '.join(POLICIES)})", line)
    return str(value)


def _pod(path: Path, data: LineDict) -> PodContext:
    pod = _mapping(path, data, "pod")
    yamlsrc.check_keys(path, pod, POD_KEYS, "pod.")
    groups = pod.get("supplementalGroups", [])
    if not isinstance(groups, list):
        raise InputError(path, "pod.supplementalGroups", "must be a list of IDs", pod.line_of("supplementalGroups"))
    line = pod.line_of("supplementalGroups")
    return PodContext(
        run_as_user=yamlsrc.expect_int_id(path, pod, "runAsUser", "pod."),
        run_as_group=yamlsrc.expect_int_id(path, pod, "runAsGroup", "pod."),
        supplemental_groups=tuple(yamlsrc.int_id(path, g, f"pod.supplementalGroups[{i}]", line)
                                  for i, g in enumerate(groups)),
        fs_group=yamlsrc.expect_int_id(path, pod, "fsGroup", "pod."),
    )


def _container(path: Path, data: LineDict) -> ContainerContext:
    ctr = _mapping(path, data, "container")
    yamlsrc.check_keys(path, ctr, CONTAINER_KEYS, "container.")
    return ContainerContext(
        run_as_user=yamlsrc.expect_int_id(path, ctr, "runAsUser", "container."),
        run_as_group=yamlsrc.expect_int_id(path, ctr, "runAsGroup", "container."),
    )


def _expectation(path: Path, data: object, where: str, line: int, keys: set[str] = EXPECT_KEYS) -> Expectation:
    if not isinstance(data, LineDict):
        raise InputError(path, where, "must be a mapping with uid, gid, groups (or error)", line)
    yamlsrc.check_keys(path, data, keys, where + ".")
    label = ""
    if "as" in keys:
        if "as" not in data:
            raise InputError(path, f"{where}.as", "is required: name this allowed outcome", data.line)
        label = _str(path, data, "as")
    if "message" in data and "error" not in data:
        raise InputError(path, f"{where}.message", "only goes with 'error'", data.line_of("message"))
    if "error" in data:
        if set(data) - {"error", "message", "as"}:
            raise InputError(path, where, "'error' cannot be combined with uid/gid/groups", data.line)
        if data["error"] not in EXPECTED_ERRORS:
            raise InputError(path, f"{where}.error", f"must be one of {sorted(EXPECTED_ERRORS)}",
                             data.line_of("error"))
        return Expectation(error=data["error"], message=_str(path, data, "message"), label=label)
    for key in ("uid", "gid", "groups"):
        if key not in data:
            raise InputError(path, f"{where}.{key}", "is required", data.line)
    groups = data["groups"]
    if not isinstance(groups, list):
        raise InputError(path, f"{where}.groups", "must be a list of IDs", data.line_of("groups"))
    gline = data.line_of("groups")
    ident = Identity(
        uid=yamlsrc.int_id(path, data["uid"], f"{where}.uid", data.line_of("uid")),
        gid=yamlsrc.int_id(path, data["gid"], f"{where}.gid", data.line_of("gid")),
        groups=frozenset(yamlsrc.int_id(path, g, f"{where}.groups[{i}]", gline) for i, g in enumerate(groups)),
    )
    return Expectation(identity=ident, label=label)


def _alternatives(path: Path, data: list, where: str, line: int) -> tuple[Expectation, ...]:
    """A list of allowed outcomes (a runtime_choice): at least two, each named with `as`, names unique."""
    if len(data) < 2:
        raise InputError(path, where, "a list of allowed outcomes needs at least two", line)
    outs = tuple(_expectation(path, item, f"{where}[{i}]", line, EXPECT_KEYS | {"as"}) for i, item in enumerate(data))
    labels = [o.label for o in outs]
    if len(set(labels)) != len(labels):
        raise InputError(path, where, f"outcome names repeat: {labels}", line)
    return outs


def _runtime_choice(path: Path, data: LineDict) -> RuntimeChoice | None:
    if "runtime_choice" not in data:
        return None
    raw = _mapping(path, data, "runtime_choice")
    yamlsrc.check_keys(path, raw, CHOICE_KEYS, "runtime_choice.")
    return RuntimeChoice(why=_str(path, raw, "why", required=True), source=_str(path, raw, "source", required=True))


def _known_failures(path: Path, data: LineDict) -> tuple[KnownFailure, ...]:
    items = data.get("known_failures", [])
    if not isinstance(items, list):
        raise InputError(path, "known_failures", "must be a list", data.line_of("known_failures"))
    out = []
    for i, item in enumerate(items):
        where = f"known_failures[{i}]"
        if not isinstance(item, LineDict):
            raise InputError(path, where, "must be a mapping", data.line_of("known_failures"))
        yamlsrc.check_keys(path, item, KNOWN_KEYS, where + ".")
        policies = item.get("policies", list(POLICIES))
        if not isinstance(policies, list):
            raise InputError(path, f"{where}.policies", "must be a list", item.line_of("policies"))
        link = _str(path, item, "link", required=True)
        if not link.startswith("https://"):
            raise InputError(path, f"{where}.link", "must be an https:// link to the issue", item.line_of("link"))
        versions = item.get("versions", "*")
        from conformance.core.versions import parse_range

        try:
            parse_range(str(versions))
        except ValueError as exc:
            raise InputError(path, f"{where}.versions", str(exc), item.line_of("versions")) from exc
        out.append(KnownFailure(
            runtime=_str(path, item, "runtime", required=True), versions=str(versions),
            policies=tuple(_policy(path, p, f"{where}.policies", item.line_of("policies")) for p in policies),
            link=link, reason=_str(path, item, "reason"),
        ))
    return tuple(out)


def _raw_cri(path: Path, data: LineDict) -> RawCRI | None:
    if "raw_cri" not in data:
        return None
    raw = _mapping(path, data, "raw_cri")
    yamlsrc.check_keys(path, raw, RAW_CRI_KEYS, "raw_cri.")
    value = raw.get("policy_value")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise InputError(path, "raw_cri.policy_value", "must be a non-negative integer", raw.line_of("policy_value"))
    omit = raw.get("omit_user", False)
    if not isinstance(omit, bool):
        raise InputError(path, "raw_cri.omit_user", "must be true or false", raw.line_of("omit_user"))
    return RawCRI(policy_value=value, omit_user=omit)


def _first_exit(path: Path, data: LineDict) -> int | None:
    """first_process: {exit: N}: the first process exits with N after the probe (status of an exited
    container); absent: it keeps running and is exec'd into."""
    if "first_process" not in data:
        return None
    first = _mapping(path, data, "first_process")
    yamlsrc.check_keys(path, first, FIRST_PROCESS_KEYS, "first_process.")
    if "exit" not in first:
        raise InputError(path, "first_process.exit", "is required", first.line)
    code = first["exit"]
    if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 255:
        raise InputError(path, "first_process.exit", f"must be an exit code 0..255, got {code!r}",
                         first.line_of("exit"))
    return code


def _user_namespace(path: Path, data: LineDict) -> bool:
    """user_namespace: true: the pod gets its own user namespace, as with hostUsers: false."""
    value = data.get("user_namespace", False)
    if not isinstance(value, bool):
        raise InputError(path, "user_namespace", f"must be true or false, got {value!r}",
                         data.line_of("user_namespace"))
    if value and "raw_cri" in data:
        raise InputError(path, "user_namespace", "cannot be combined with raw_cri",
                         data.line_of("user_namespace"))
    return value


def load_scenario(path: Path, images: dict[str, ImageDef]) -> Scenario:
    """Load and validate one scenario file against the known images."""
    data = yamlsrc.load(path)
    if not isinstance(data, LineDict):
        raise InputError(path, "", "a scenario must be a YAML mapping")
    yamlsrc.check_keys(path, data, TOP_KEYS, "")
    name = _str(path, data, "name") or path.stem
    if not set(name) <= NAME_CHARS:
        raise InputError(path, "name", f"{name!r}: use lowercase letters, digits and '-'", data.line_of("name"))
    image = _str(path, data, "image", required=True)
    if image not in images:
        raise InputError(path, "image", f"unknown image {image!r} (known: {', '.join(sorted(images))})",
                         data.line_of("image"))
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and t and set(t) <= NAME_CHARS for t in tags):
        raise InputError(path, "tags", "must be a list of lowercase words", data.line_of("tags"))
    policies = data.get("policies", list(POLICIES))
    if not isinstance(policies, list) or not policies:
        raise InputError(path, "policies", "must be a non-empty list", data.line_of("policies"))
    policies = [_policy(path, p, "policies", data.line_of("policies")) for p in policies]
    if len(set(policies)) != len(policies):
        raise InputError(path, "policies", "lists a policy twice", data.line_of("policies"))
    expect_raw = _mapping(path, data, "expect")
    choice = _runtime_choice(path, data)
    expect, expect_lines, choices = {}, {}, {}
    for key in expect_raw:
        _policy(path, key, f"expect.{key}", expect_raw.line_of(str(key)))
    for policy in policies:
        if policy not in expect_raw:
            raise InputError(path, f"expect.{policy}", "missing expectation for a listed policy", expect_raw.line)
        raw, line = expect_raw[policy], expect_raw.line_of(policy)
        if isinstance(raw, list):
            if choice is None:
                raise InputError(path, f"expect.{policy}", "must be a mapping with uid, gid, groups (or error); a "
                                 "list of allowed outcomes needs a runtime_choice (why the CRI and KEP-3619 leave "
                                 "the case open, and the source)", line)
            choices[policy] = _alternatives(path, raw, f"expect.{policy}", line)
            expect[policy] = choices[policy][0]
        else:
            expect[policy] = _expectation(path, raw, f"expect.{policy}", line)
        expect_lines[policy] = line
    if choice is not None and not choices:
        raise InputError(path, "runtime_choice", "no expect entry lists allowed outcomes",
                         data.line_of("runtime_choice"))
    oracle = data.get("oracle", True)
    if not isinstance(oracle, bool):
        raise InputError(path, "oracle", "must be true or false", data.line_of("oracle"))
    raw_cri = _raw_cri(path, data)
    if raw_cri is not None and data.get("oracle") is not False:
        raise InputError(path, "oracle", "a raw_cri scenario sends what no kubelet sends, so the oracle cannot "
                         "compute it: say `oracle: false`", data.line_of("raw_cri"))
    userns = _user_namespace(path, data)
    if userns and USERNS_TAG not in tags:
        tags = [*tags, USERNS_TAG]
    return Scenario(
        name=name, path=path, image=image, source=_str(path, data, "source", required=True),
        description=_str(path, data, "description"), tags=tuple(tags), pod=_pod(path, data),
        container=_container(path, data), policies=tuple(policies), expect=expect, expect_lines=expect_lines,
        known_failures=_known_failures(path, data), oracle=oracle, raw_cri=raw_cri,
        first_exit=_first_exit(path, data), choice=choice, choices=choices,
        user_namespace=userns,
    )


def load_catalogue(directory: Path, images: dict[str, ImageDef]) -> list[Scenario]:
    """Every scenarios/*.yaml, validated; duplicate names are an error."""
    if not directory.is_dir():
        raise InputError(directory, "", "scenarios directory not found")
    scenarios: list[Scenario] = []
    seen: dict[str, Path] = {}
    for path in sorted(directory.glob("*.yaml")):
        scn = load_scenario(path, images)
        if scn.name in seen:
            raise InputError(path, "name", f"duplicate scenario name {scn.name!r} (also in {seen[scn.name]})",
                             yamlsrc.load(path).line_of("name"))
        seen[scn.name] = path
        scenarios.append(scn)
    return scenarios
