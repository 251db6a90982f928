"""Shared by every process: settings, database models and pure domain rules."""
