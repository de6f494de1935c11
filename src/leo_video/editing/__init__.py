"""First-frame editors for LEO's video editing (LEO_METHOD.md, "Video editing").

* :mod:`.controlnet` — ``ControlNetEditor``: a text prompt + the frame's Canny edges through a
  Stable Diffusion 1.5 ControlNet img2img pipeline (needs ``pip install 'leo-video[edit]'``).
* :mod:`.canny` — ``canny_edges``, the structure condition (``cv2.Canny``, as ControlNet's annotator).
* :mod:`.arguments` — the ``leo-video edit --editor controlnet`` options.

Nothing is imported here, so ``leo_video.editing.arguments`` stays cheap for ``--help``.
"""
