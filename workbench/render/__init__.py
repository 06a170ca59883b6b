"""Reports as text and exports; every image string escaped and capped."""
