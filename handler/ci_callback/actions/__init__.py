"""The built-in follow-up actions (index documents, tags, records) and the bounded work pool."""
