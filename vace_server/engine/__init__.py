"""Model engine: pipeline loading (tiny / local folder / hub id), generation, sizes.

Kept import-light on purpose: `engine.sizes` is used by `functions/`, which must not pull in
torch or diffusers. Import `engine.loader`, `engine.runner` or `engine.tiny` explicitly.
"""
