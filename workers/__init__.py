"""rq workers: imports, exports and after-call jobs."""
