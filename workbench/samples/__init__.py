"""Hand-built image bytes, one module per format: the demonstration set and the hostile test corpus.

Builders return ``bytes`` (stdlib only) so tests and the ``--demo`` window make images without qemu-img.
"""
