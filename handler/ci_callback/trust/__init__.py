"""Trust: the token check and the bucket policy."""
