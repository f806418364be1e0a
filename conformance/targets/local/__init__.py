"""TARGET=local: a private single-node cluster (etcd, API server, controller-manager, scheduler, kubelet)
on the runtime under test (session.py; controlplane.py, pki.py, binaries.py)."""
