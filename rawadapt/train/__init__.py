"""Training: shared step/evaluate primitives, the training loop, strategies, ADL."""
