"""Browser tests of the dashboard (a package: its conftest must not clash with others)."""
