"""The reconcile sweep: its spec, the pure plan (judging listed jobs), and the run."""
