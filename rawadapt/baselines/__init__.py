"""The ADL paper's baselines behind one interface."""
