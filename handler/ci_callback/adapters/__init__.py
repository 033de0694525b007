"""The only I/O: COS (and CI's API, through the COS SDK), SCF, and the services an invocation holds."""
