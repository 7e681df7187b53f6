"""inversion package."""
