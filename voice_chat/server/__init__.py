"""Transport: the FastAPI app, realtime sessions, the wire protocol and the HTTP API."""
