"""`sgp-conformance audit`: which running workloads would lose groups under Strict, and which nodes would
reject Strict pods. Read-only: it lists pods, nodes and their owners, and changes nothing.

reader.py lists the objects, owners.py names each pod's workload, findings.py compares the groups each
container was attached (status user.linux) with what its pod asks for, render.py writes the report,
cli.py is the command."""
