"""What the program knows: validated reports, policy and verdicts, settings, and Qt item models.

Only the ``*_model`` modules import Qt; the rest serves the command line too.
"""
