"""Delivery links: pre-signed, revocable, fetch-limited `download_url`s for private models."""
