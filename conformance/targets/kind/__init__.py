"""TARGET=kind: kind clusters per cell of versions.yaml (session.py, cells.py, cli.py, config.py,
nodeimage.py, lifecycle.py, plan.py). Kept light: the CI matrix job imports cells.py with PyYAML only."""
