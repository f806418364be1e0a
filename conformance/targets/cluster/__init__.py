"""TARGET=cluster: an existing cluster from a kubeconfig."""
