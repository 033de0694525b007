"""Work that outlives one invocation: checkpoints and the chain of self-invocations."""
