"""Where spaces and speakers are kept: SQLite for the embedded default."""
