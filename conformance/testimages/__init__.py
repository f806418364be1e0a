"""The test images: their definitions, archives built offline, and the ways they reach a runtime."""
