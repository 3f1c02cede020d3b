"""The domain: spaces, the people on stage, and what each may do. No I/O."""
