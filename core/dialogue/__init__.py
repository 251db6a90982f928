"""Dialogue rules shared by the controller and the console: the script (话术) schema and its
validation, intent matching with built-in Chinese intents, the pure script interpreter and
grading. No I/O."""
