"""Training: the shared accelerate loop, checkpoints, EMA, logging, and one module per stage."""
