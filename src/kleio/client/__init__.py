"""The in-program client of kleio (imports nothing heavy)."""
