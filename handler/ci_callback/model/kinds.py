"""The three callback kinds. Their own module so the router (imported on a cold start,
before any token is checked) does not have to load the models."""

JOB = "job"
WORKFLOW = "workflow"
MODERATION = "moderation"
