"""Ruang: live audio spaces that stay on air.

WHIP in, a server-side mix, LL-HLS out to any number of listeners, and a replay written as it goes.
"""

__version__ = "0.1.0"
