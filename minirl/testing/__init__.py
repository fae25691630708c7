"""Reusable test helpers (gradient checks, strategies, oracles) that users can import too."""
