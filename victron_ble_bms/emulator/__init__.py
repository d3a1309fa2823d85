"""Reference emulator: device models that behave as their manuals describe, and advertisers."""
