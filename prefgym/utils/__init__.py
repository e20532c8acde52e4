"""Small shared helpers: atomic file writes, seeding, thread settings."""
