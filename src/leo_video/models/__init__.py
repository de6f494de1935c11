"""Networks only: they never know a noise schedule or a dataset layout."""
