"""Jobs: what a job is, its one lifecycle (checks, reserve, queue, run, record, settle), restart safety."""
