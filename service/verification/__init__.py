"""Verification, the question recognition systems ask before processing any face: from HTTP to SQL.

- ``rules``: what a consent's state and the capturing device mean (pure);
- ``store``: the statements that read the state and record each decision;
- ``verifier``: connections and transactions around the store, failing closed;
- ``bodies``: reading and validating request bodies of any shape, size or encoding;
- ``endpoint``: the one WSGI endpoint for ``POST /v1/verifications`` and ``/batch``.
"""
