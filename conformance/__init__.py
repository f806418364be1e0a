"""Conformance suite for Kubernetes' supplementalGroupsPolicy (KEP-3619) on CRI runtimes."""

__version__ = "0.1.0"
