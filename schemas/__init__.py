"""Marshmallow schemas of the v1 API: pure, no database, no request context."""
