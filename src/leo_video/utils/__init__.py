"""Small shared utilities (atomic file writes, devices, seeding, the progress-bar switch)."""
