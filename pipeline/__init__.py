"""Everything that runs on frames (see the modules)."""
