"""Keys and tokens: API keys, consent-token signing keys and tokens, the data key, status-list bits.

Nothing here is imported at package import time: the offline verifier (``service.offline``) imports
``service.keys.tokens`` and ``service.keys.status_bits`` without Flask or SQLAlchemy installed.
"""
