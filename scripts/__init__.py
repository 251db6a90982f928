"""Entry points: `python -m scripts.manage …` (CLI) and the set-up and run shell scripts."""
