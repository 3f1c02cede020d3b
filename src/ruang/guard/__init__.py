"""The guard: listener tickets, admission and the waiting room, load shedding."""
