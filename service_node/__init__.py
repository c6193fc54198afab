"""Service node daemon: a simulated QPU that advertises, reserves and executes fragments."""
