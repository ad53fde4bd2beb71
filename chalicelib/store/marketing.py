"""PynamoDB models of the marketing tables."""
from __future__ import annotations

MODELS: list = []
