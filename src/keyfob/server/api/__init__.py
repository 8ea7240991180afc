"""The REST API (FastAPI): thin routes over the service modules."""
