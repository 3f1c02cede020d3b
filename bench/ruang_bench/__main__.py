"""`python -m ruang_bench NAME ...` (the same as `ruang bench NAME ...`)."""

from ruang_bench import main

main()
