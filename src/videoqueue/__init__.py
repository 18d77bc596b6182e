"""videoqueue: a self-hosted, Venice-compatible video generation API server."""
