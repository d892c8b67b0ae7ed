"""rolegraph."""
