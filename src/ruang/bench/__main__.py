"""`python -m ruang.bench NAME ...` (the same as `ruang bench NAME ...`)."""

from ruang.bench import main

main()
