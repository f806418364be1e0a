"""What every Kubernetes target (local, cluster, kind) and the audit share: the API client (api.py), waits
that fail early (waits.py), the scenarios as pods (manifests.py, pods.py), readers of the raw JSON
(status.py), the kubelet's admission rule (admission.py), the targets' own checks (checks.py) and the
runner (runner.py). It imports no target."""
