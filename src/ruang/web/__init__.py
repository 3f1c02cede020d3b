"""HTTP: the control app (media process) and the public app (delivery workers)."""
