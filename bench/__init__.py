"""The Consent Gate benchmark: `make bench` (python -m bench)."""
