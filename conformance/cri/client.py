"""A small CRI v1 client over grpcio: one method per call the suite makes."""

from __future__ import annotations

import grpc

from conformance import interrupt
from conformance.cri import api_pb2 as pb
from conformance.cri import api_pb2_grpc as rpc
from conformance.errors import RuntimeBroken

DEFAULT_TIMEOUT = 30.0
# Codes meaning the runtime itself is gone or wedged, not that it refused the request.
BROKEN = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED,
          grpc.StatusCode.UNIMPLEMENTED}


class CRIError(Exception):
    """The runtime answered a call with an error status (a refusal, not a crash)."""

    def __init__(self, method: str, code: grpc.StatusCode, details: str):
        self.method = method
        self.code = code
        self.details = details
        super().__init__(f"{method}: {code.name}: {details}")


class CRIClient:
    """Runtime and image services on one channel."""

    def __init__(self, endpoint: str, timeout: float = DEFAULT_TIMEOUT):
        self.endpoint = endpoint
        self.timeout = timeout
        target = endpoint if endpoint.startswith("unix:") else f"unix://{endpoint}"
        # Short reconnect backoff: a runtime that is starting (or restarting) answers within
        # milliseconds of its socket appearing; gRPC's default first backoff is a whole second.
        self.channel = grpc.insecure_channel(target, options=[
            ("grpc.max_receive_message_length", 16 << 20),
            ("grpc.initial_reconnect_backoff_ms", 20),
            ("grpc.min_reconnect_backoff_ms", 20),
            ("grpc.max_reconnect_backoff_ms", 250),
        ])
        self.runtime = rpc.RuntimeServiceStub(self.channel)
        self.images = rpc.ImageServiceStub(self.channel)

    def close(self) -> None:
        with interrupt.shielded():
            self.channel.close()

    def call(self, service: object, method: str, request: object, timeout: float | None = None) -> object:
        try:
            with interrupt.shielded():  # a Ctrl-C inside gRPC's locking would wedge the channel
                return getattr(service, method)(request, timeout=timeout or self.timeout)
        except grpc.RpcError as exc:
            code, details = exc.code(), exc.details() or ""
            if code in BROKEN:
                raise RuntimeBroken(f"{method} on {self.endpoint}: {code.name}: {details}") from exc
            raise CRIError(method, code, details) from exc

    # runtime service
    def version(self, timeout: float | None = None) -> pb.VersionResponse:
        return self.call(self.runtime, "Version", pb.VersionRequest(version="v1"), timeout)

    def status(self) -> pb.StatusResponse:
        return self.call(self.runtime, "Status", pb.StatusRequest())

    def run_pod_sandbox(self, config: pb.PodSandboxConfig, handler: str = "") -> str:
        req = pb.RunPodSandboxRequest(config=config, runtime_handler=handler)
        return self.call(self.runtime, "RunPodSandbox", req, timeout=120).pod_sandbox_id

    def stop_pod_sandbox(self, sandbox_id: str) -> None:
        self.call(self.runtime, "StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))

    def remove_pod_sandbox(self, sandbox_id: str) -> None:
        self.call(self.runtime, "RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))

    def list_pod_sandbox(self, labels: dict[str, str] | None = None) -> list[pb.PodSandbox]:
        req = pb.ListPodSandboxRequest(filter=pb.PodSandboxFilter(label_selector=labels or {}))
        return list(self.call(self.runtime, "ListPodSandbox", req).items)

    def create_container(self, sandbox_id: str, config: pb.ContainerConfig,
                         sandbox_config: pb.PodSandboxConfig) -> str:
        req = pb.CreateContainerRequest(pod_sandbox_id=sandbox_id, config=config, sandbox_config=sandbox_config)
        return self.call(self.runtime, "CreateContainer", req, timeout=60).container_id

    def start_container(self, container_id: str) -> None:
        self.call(self.runtime, "StartContainer", pb.StartContainerRequest(container_id=container_id), timeout=60)

    def stop_container(self, container_id: str, timeout: int = 0) -> None:
        req = pb.StopContainerRequest(container_id=container_id, timeout=timeout)
        self.call(self.runtime, "StopContainer", req, timeout=timeout + 30)

    def list_containers(self, sandbox_id: str) -> list[pb.Container]:
        req = pb.ListContainersRequest(filter=pb.ContainerFilter(pod_sandbox_id=sandbox_id))
        return list(self.call(self.runtime, "ListContainers", req).containers)

    def container_status(self, container_id: str) -> pb.ContainerStatus:
        req = pb.ContainerStatusRequest(container_id=container_id)
        return self.call(self.runtime, "ContainerStatus", req).status

    def exec_sync(self, container_id: str, cmd: list[str], timeout: int = 10) -> pb.ExecSyncResponse:
        req = pb.ExecSyncRequest(container_id=container_id, cmd=cmd, timeout=timeout)
        return self.call(self.runtime, "ExecSync", req, timeout=timeout + 10)

    # image service
    def image_status(self, ref: str) -> pb.Image | None:
        resp = self.call(self.images, "ImageStatus", pb.ImageStatusRequest(image=pb.ImageSpec(image=ref)))
        return resp.image if resp.HasField("image") else None

    def pull_image(self, ref: str) -> str:
        req = pb.PullImageRequest(image=pb.ImageSpec(image=ref))
        return self.call(self.images, "PullImage", req, timeout=120).image_ref

    def remove_image(self, ref: str) -> None:
        self.call(self.images, "RemoveImage", pb.RemoveImageRequest(image=pb.ImageSpec(image=ref)))
