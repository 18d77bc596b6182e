"""Signed webhooks: the per-account signing secret, the durable outbox of deliveries, and the
sender that worker processes run."""
