"""Independent reference implementations used by tests (no code shared with ``leo_video``)."""
