"""PynamoDB models of the coupons tables."""
from __future__ import annotations

MODELS: list = []
