"""stations package."""
