"""The window: widgets and pages over the item models in :mod:`workbench.models`.

Nothing here reads image bytes; every inspection is awaited through qasync.
"""
