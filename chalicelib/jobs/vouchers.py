"""Voucher jobs (expire-vouchers)."""
