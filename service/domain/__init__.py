"""Use-cases: each takes a session, enforces the rules, writes audit events and flushes; none commits."""
