"""Small shared helpers: atomic file writes, seeding, cache location."""
