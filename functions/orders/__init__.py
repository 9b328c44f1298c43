"""Orders service: placing orders and following them through the saga."""
