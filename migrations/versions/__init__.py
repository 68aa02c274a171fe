"""Reviewed revisions, applied in order by ``consent-gate db upgrade``."""
