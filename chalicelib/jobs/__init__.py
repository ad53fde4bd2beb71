"""Scheduled jobs: segmented, resumable, shared by the schedules, the admin API and the CLI."""
