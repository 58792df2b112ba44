# One line per test. Keep sorted by area.
