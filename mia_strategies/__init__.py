"""Everything that runs inside the nautilus kernel, plus the CLI that builds the nodes."""
