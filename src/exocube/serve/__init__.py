"""The HTTP prediction service: ``create_app`` builds the FastAPI application."""

from exocube.serve.main import create_app

__all__ = ["create_app"]
