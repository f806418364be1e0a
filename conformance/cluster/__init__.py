"""Cluster targets: kind clusters per runtime x version (TARGET=kind) and existing clusters (TARGET=cluster)."""
