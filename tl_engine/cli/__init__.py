"""``python -m tl_engine {race,datasets,sweep,similarity}``: argument parsing and printing, nothing else."""
