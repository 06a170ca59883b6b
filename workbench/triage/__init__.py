"""Folders of images: the walk, the bounded batch and its outputs."""
