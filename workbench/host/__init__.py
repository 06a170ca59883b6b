"""The parent side of the process boundary: open the image, run the child, validate its reply."""
