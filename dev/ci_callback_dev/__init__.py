"""Developer tooling for ci-callback: the CLI, the local COS, the demo, the deploy check.

Never shipped to SCF (it lives outside handler/, the code root) and never imported by the
runtime package ``ci_callback``; it imports the runtime, not the other way round.
"""
