"""The AI dialogue on an answered call: verbs, the runtime that runs a script (or an LLM) over
a `CallControl`, and the ESL implementation of that control. See README.md here."""
