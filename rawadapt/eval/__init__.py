"""Metrics, evaluation protocols, plots and the HTML report."""
