"""A live space's media pipeline: mixer clock, encoder, packager, durable store."""
