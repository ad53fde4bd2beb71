"""Pydantic request/response models: the edge's validation and the OpenAPI document."""
