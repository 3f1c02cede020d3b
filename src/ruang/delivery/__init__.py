"""Listener delivery: live and replay HLS from disk, with LL-HLS blocking reload."""
