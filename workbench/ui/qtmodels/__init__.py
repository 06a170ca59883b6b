"""Qt item models over plain nodes."""
