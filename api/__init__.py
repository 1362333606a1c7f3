"""The REST API (v1): authentication, permissions, errors and the routers of every app."""
