"""MLflow tracking: one experiment per table, one run per variant."""
