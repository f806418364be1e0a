"""Fault injection: the suite must fail broken runtimes (run with `python -m tests.faults`)."""
