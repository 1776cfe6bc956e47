"""Fake upstreams: in-memory sockets for the autojump clock, real localhost servers for end-to-end tests."""
