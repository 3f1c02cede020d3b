"""Client-side tools shared by the tests and `ruang bench`: a WHIP publisher, tones, analysis."""
