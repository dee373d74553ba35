"""Thin DRF views, one module per area. Each view checks membership through selectors, calls a
service for writes, and serialises the result."""
