"""Runs tiersync against the tracker simulators: the sandbox (simulators plus a configuration
pointed at them) and the demo. The simulators themselves (``simulators/``) know nothing of
tiersync; this package is where the two meet."""
