"""Background jobs: the daily dunning (planner -> composer -> outbox) and its schedulers."""
