"""Hardware: the roofline model (model.py), named GPUs from their datasheets (registry.py) and the user's own
hardware from a TOML file (user.py). Plain Python: measure, analysis and the renderers may all import it."""
