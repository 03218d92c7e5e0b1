"""An example panbench plugin: one world-model adapter registered through an entry point."""
