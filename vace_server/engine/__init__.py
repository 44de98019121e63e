"""Model engine: pipeline loading (tiny / local folder / hub id) and generation.

Import `engine.loader`, `engine.runner` or `engine.tiny` explicitly: they pull in torch and
diffusers. The model-input contract they run (`VaceInputs`, `ModelProfile`, generation sizes)
lives in `vace_server.model_inputs`, shared with `functions/` (which never imports engine/).
"""
