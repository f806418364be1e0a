"""TARGET=node: cases straight over the CRI v1 API of the runtime under test (session.py), delivered the
way the kubelet sends them (target.py), run and judged per pytest process (runner.py), with the
runtime restarted on request for the `restart` cases (restart.py)."""
