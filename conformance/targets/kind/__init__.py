"""TARGET=kind: a kind cluster for a runtime cell (session.py), on an existing or a private Docker engine
(engine.py, capfilter.py), from stock or offline-built node images (nodebase.py, parts.py, nodeimage.py),
through the kind CLI (cli.py, config.py, lifecycle.py); plan.py shows it all without running it; cells.py
reads versions.yaml. Kept light: the CI matrix job imports cells.py with PyYAML only."""
