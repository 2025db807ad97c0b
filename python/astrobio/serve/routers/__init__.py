"""One router per resource: datasets (and their versions, quality, load, collect), jobs."""
