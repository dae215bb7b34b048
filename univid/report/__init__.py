"""Results -> pandas -> Jinja -> LaTeX."""
