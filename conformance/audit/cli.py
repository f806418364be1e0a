"""`sgp-conformance audit`: read-only; exit 0 when nothing would break under Strict, 1 when some workload has
implicit groups, is unknown or sits on a node without support, 2 when the cluster could not be read."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from conformance.audit import render
from conformance.audit.findings import Audit, audit
from conformance.audit.owners import Owners
from conformance.audit.reader import AuditError, ClusterReader, ReadApi, kubeconfig_context
from conformance.audit.recorded import RecordedApi


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", help="kubeconfig file (default KUBECONFIG, then ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context (default the current one)")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", help="namespace (default the context's, else default)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    p.add_argument("-l", "--selector", default="", help="label selector for the pods, e.g. app=web")
    p.add_argument("-o", "--output", choices=render.FORMATS, default="table", help="table (default), json, markdown")
    p.add_argument("--from-file", type=Path, help="audit a `kubectl get pods,nodes,replicasets,jobs -A -o json` dump "
                                                  "instead of a cluster")


def run(api: ReadApi, namespace: str | None, selector: str) -> Audit:
    """Read pods, nodes and (when pods have them) ReplicaSets and Jobs; return the findings."""
    pods = api.pods(namespace, selector)
    return audit(pods, api.nodes(), Owners(api, namespace))


def write(result: Audit, scope: dict, output: str) -> str:
    if output == "json":
        return json.dumps(render.to_json(result, scope), indent=2) + "\n"
    return render.markdown(result, scope) if output == "markdown" else render.table(result, scope)


def main(args: argparse.Namespace) -> int:
    try:
        reader: ClusterReader | RecordedApi
        if args.from_file:
            context, default_ns, reader = str(args.from_file), "default", RecordedApi.load(args.from_file)
        else:
            context, default_ns = kubeconfig_context(args.kubeconfig, args.context)
            reader = ClusterReader(args.kubeconfig, args.context)
        namespace = None if args.all_namespaces else (args.namespace or default_ns)
        result = run(reader, namespace, args.selector)
    except AuditError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    scope = {"context": context, "server": reader.server, "namespaces": "all" if namespace is None else namespace,
             "selector": args.selector, "generatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    sys.stdout.write(write(result, scope, args.output))
    return result.exit_code
