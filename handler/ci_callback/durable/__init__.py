"""The pipeline after trust: archive, verify, claim, act, answer; the inbox and replay."""
