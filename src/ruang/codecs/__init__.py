"""Encoders behind one small interface; PyAV implementations."""
