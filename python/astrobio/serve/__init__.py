"""The REST service over the dataset registry (`astrobio serve`); see docs/registry.md."""

from .app import API_PREFIX, create_app
from .settings import Settings

__all__ = ["create_app", "Settings", "API_PREFIX", "serve"]


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Run the service with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level)
