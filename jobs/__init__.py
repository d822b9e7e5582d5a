"""casejobs jobs: one module per job, holding only what is particular to it."""
