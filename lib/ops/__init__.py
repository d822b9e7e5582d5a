"""Operations commands: jobstats and jobctl."""
