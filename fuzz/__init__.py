"""Fuzzing the engine: the seed corpus, the invariants every report must hold, and a coverage-guided target."""
