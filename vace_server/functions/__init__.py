"""One module per DashScope function, each turning a TaskSpec into `VaceInputs`.

Import-light on purpose (PIL and numpy only, never torch/diffusers): the API process imports it.
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image

from vace_server import errors
from vace_server.tasks.spec import TaskSpec, VaceFunction

from . import image_reference
from .base import MediaSource, ModelProfile, VaceInputs

__all__ = ["MediaSource", "ModelProfile", "VaceInputs", "build_inputs"]


def build_inputs(
    spec: TaskSpec,
    media: MediaSource,
    profile: ModelProfile,
    *,
    cut_out: Callable[[Image.Image], Image.Image],
) -> VaceInputs:
    """Dispatches on `spec.function`.

    Returns: validated VaceInputs. Raises: errors.NotYetSupported for functions this version
    does not implement yet; whatever the function module raises (ServiceError subclasses).
    """
    if spec.function is VaceFunction.IMAGE_REFERENCE:
        return image_reference.build(spec, media, profile, cut_out)
    raise errors.NotYetSupported(
        f"Function {spec.function.value} is not yet supported by this server version."
    )
