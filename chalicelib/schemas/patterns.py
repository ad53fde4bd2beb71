"""The id patterns every layer checks, without the pydantic models of `schemas/common.py`:
the HTTP layer checks path parameters against them at `import app` time, before any
route's models are imported (cold start)."""

MEMBER_ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,64}$"
ID_PATTERN = r"^[A-Za-z0-9._:@#/-]{1,128}$"
