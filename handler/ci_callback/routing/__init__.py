"""The router (``on(kind, tag, state)``) and the built-in handlers registered on it."""
