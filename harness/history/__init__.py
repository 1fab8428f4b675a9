"""The results history: every run's final cells in one SQLite file, and the questions
asked of it across nights (since when does a cell fail, which cells flip, which grew
slower)."""
