"""The pure core's data: decode a body, parse it into typed models, the Tag registry. No I/O."""
