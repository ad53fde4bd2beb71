"""Coupon jobs (bulk code generation)."""
