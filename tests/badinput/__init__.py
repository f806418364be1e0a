"""Bad input: malformed scenario and image files must be refused before anything starts."""
