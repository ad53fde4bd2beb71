"""PynamoDB models of the rewards tables."""
from __future__ import annotations

MODELS: list = []
