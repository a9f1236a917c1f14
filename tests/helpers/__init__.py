"""Helpers shared by the test tiers: plain modules, imported by name (never from conftest)."""
