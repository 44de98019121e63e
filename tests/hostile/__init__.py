"""Hostile-input corpora: one module per class of attack or mistake (URLs and addresses, bodies
and media, request fields, auth and isolation, signed links, uploads). Every case asserts a
DashScope-shaped error or FAILED code, and a healthy server afterwards."""
