"""Queue delivery: CMQ records unwrapped, and the batch run record by record."""
