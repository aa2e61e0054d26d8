"""Running a config: the plan (node keys), the executor, process isolation, the benchmark
entry point that writes a results folder, provenance and logging."""
