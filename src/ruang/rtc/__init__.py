"""WebRTC: WHIP sessions terminated with aiortc. The only package that knows WebRTC."""
