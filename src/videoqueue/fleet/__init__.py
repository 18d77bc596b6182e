"""The worker fleet: each worker's registration and heartbeat, read by the API and the CLI."""
