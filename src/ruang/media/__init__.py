"""Pure numpy audio: input buffering, the mixer and its limiter. No I/O, no clocks."""
