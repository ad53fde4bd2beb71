"""Storage: PynamoDB models, key formats and repositories. Nothing here leaks above services."""
