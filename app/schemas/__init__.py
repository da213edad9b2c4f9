"""Pydantic models of the admin API's documents (published in /openapi.json)."""
