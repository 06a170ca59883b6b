"""The demonstration set of images."""
