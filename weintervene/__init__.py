"""WeIntervene's shared library: what every service needs, written once.

config (typed settings), db (SQLAlchemy 2 session provider and migrations),
contracts (message schemas shared by publisher and consumer), auth (the caller's
identity passed with every RPC), errors (remote errors the gateway maps to HTTP),
metrics and health (Prometheus and a health RPC for every service).
"""
