"""The replay lab: compare adaptation approaches on a recorded stream, in event time."""
