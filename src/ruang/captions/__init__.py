"""Live captions of the program mix, made offline on the machine, apart from the mixer."""
