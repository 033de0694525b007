"""The trigger edge: which trigger sent an event, and the HTTP request it carries."""
