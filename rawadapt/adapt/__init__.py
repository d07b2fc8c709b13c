"""Test-time adaptation: LAN and fine-tuning baselines, self-supervised losses."""
