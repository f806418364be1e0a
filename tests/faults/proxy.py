"""A CRI proxy: a grpc server on a unix socket that forwards every runtime.v1 call to a real runtime.

Each method is forwarded with the project's generated messages (unknown fields survive the round
trip), so a transparent proxy changes nothing; a fault is a request or response hook.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent import futures
from pathlib import Path

import grpc
from google.protobuf.message import Message

from conformance.cri import api_pb2 as pb

Hook = Callable[[Message], Message | None]  # mutate in place (return None) or return a replacement


def _methods() -> dict[str, tuple[type[Message], type[Message]]]:
    """'/runtime.v1.Service/Method' -> (request class, response class) for every RPC in api.proto."""
    out = {}
    for service in pb.DESCRIPTOR.services_by_name.values():
        for method in service.methods:
            if method.client_streaming or method.server_streaming:
                continue  # the subset the suite uses is unary only
            out[f"/{service.full_name}/{method.name}"] = (getattr(pb, method.input_type.name),
                                                          getattr(pb, method.output_type.name))
    return out


class _Forwarder(grpc.GenericRpcHandler):
    def __init__(self, proxy: CRIProxy):
        self.proxy = proxy
        self.methods = _methods()

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        full = handler_call_details.method
        if full not in self.methods:
            return self._raw(full)
        req_cls, resp_cls = self.methods[full]
        name = full.rsplit("/", 1)[1]
        upstream = self.proxy.channel.unary_unary(full, request_serializer=req_cls.SerializeToString,
                                                  response_deserializer=resp_cls.FromString)

        def forward(request: Message, context: grpc.ServicerContext) -> Message:
            self.proxy.calls.append(name)
            hook = self.proxy.request_hooks.get(name)
            if hook is not None:
                request = hook(request) or request
            remaining = context.time_remaining()
            try:
                response = upstream(request, timeout=remaining if remaining is not None else 120)
            except grpc.RpcError as exc:
                context.abort(exc.code(), exc.details() or "")
            hook = self.proxy.response_hooks.get(name)
            if hook is not None:
                response = hook(response) or response
            return response

        return grpc.unary_unary_rpc_method_handler(forward, request_deserializer=req_cls.FromString,
                                                   response_serializer=resp_cls.SerializeToString)


    def _raw(self, full: str) -> grpc.RpcMethodHandler | None:
        """A unary call outside the project's CRI subset (a kubelet makes many): forwarded as bytes, untouched."""
        if full.endswith("/GetContainerEvents"):
            return None  # the only streaming call (evented PLEG, off by default): the kubelet copes without it
        upstream = self.proxy.channel.unary_unary(full)

        def forward(request: bytes, context: grpc.ServicerContext) -> bytes:
            self.proxy.calls.append(full.rsplit("/", 1)[1])
            remaining = context.time_remaining()
            try:
                return upstream(request, timeout=remaining if remaining is not None else 120)
            except grpc.RpcError as exc:
                context.abort(exc.code(), exc.details() or "")

        return grpc.unary_unary_rpc_method_handler(forward)


class CRIProxy:
    """Listen on `socket`, forward to `upstream` (unix://...); hooks are keyed by RPC method name."""

    def __init__(self, socket: Path, upstream: str, request_hooks: dict[str, Hook] | None = None,
                 response_hooks: dict[str, Hook] | None = None):
        self.socket = socket
        self.upstream = upstream
        self.request_hooks = request_hooks or {}
        self.response_hooks = response_hooks or {}
        self.calls: list[str] = []
        self.channel = grpc.insecure_channel(upstream, options=[("grpc.max_receive_message_length", 16 << 20)])
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), handlers=[_Forwarder(self)])
        self.server.add_insecure_port(f"unix://{socket}")

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    def __enter__(self) -> CRIProxy:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(grace=None).wait(5)
        self.channel.close()
        self.socket.unlink(missing_ok=True)


# The faults. Each takes the message the runtime (or the suite) sent and falsifies it.

def silence_shared_init(req: pb.CreateContainerRequest) -> None:
    """The init probe of a pod that carries several container kinds exits at once, printing nothing: a
    container that breaks (not the runtime's evidence) in one kind of a shared pod."""
    kinds = req.sandbox_config.labels.get("sgp.conformance/variants", "")
    if req.config.metadata.name == "probe-init" and "." in kinds:
        del req.config.command[:]
        req.config.command.extend(["/bin/sh", "-c", "exit 0"])


def strip_policy(req: pb.CreateContainerRequest) -> None:
    """(a) A runtime that advertises the feature but ignores the policy: Strict never arrives."""
    req.config.linux.security_context.ClearField("supplemental_groups_policy")
    req.sandbox_config.linux.security_context.ClearField("supplemental_groups_policy")


LIE_GROUP = 65534


def lie_user(resp: pb.ContainerStatusResponse) -> None:
    """(b) ContainerStatus.user claims one more supplementary group than the process has."""
    if resp.status.HasField("user") and resp.status.user.HasField("linux"):
        groups = resp.status.user.linux.supplemental_groups
        if LIE_GROUP not in groups:
            groups.append(LIE_GROUP)


def drop_features(resp: pb.StatusResponse) -> None:
    """(c) Status() without the features message (as a pre-1.31 runtime would answer)."""
    resp.ClearField("features")


def claim_features(resp: pb.StatusResponse) -> None:
    """(d) Status() claims supplemental_groups_policy on a runtime that has no such feature."""
    resp.features.supplemental_groups_policy = True
