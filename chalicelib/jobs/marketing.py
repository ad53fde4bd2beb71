"""Segmentation and messaging jobs (score-rfm, run-automations, run-triggers)."""
