"""Tools beside a run: the version matrix, the benchmark, the soak, the catalogue's lint."""
