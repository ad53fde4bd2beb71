"""Loyalty & rewards backend: everything but the Chalice wiring lives here."""
