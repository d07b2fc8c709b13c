"""Dataset adapters, one module per layout (see rawadapt.data.registry)."""
