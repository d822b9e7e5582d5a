"""The operations commands, above the jobs they drive: jobctl (install, status, run, catch-up, export,
doctor, the database) and jobstats (what ran, how it went)."""
