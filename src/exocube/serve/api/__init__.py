"""Routers of the HTTP service."""
