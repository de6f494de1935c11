"""First-frame editors for LEO's video editing (LEO_METHOD.md, "Video editing").

* :mod:`.controlnet` — ``ControlNetEditor``: a text prompt + the frame's Canny edges through a
  Stable Diffusion 1.5 ControlNet img2img pipeline (needs ``pip install 'leo-video[edit]'``).
* :mod:`.canny` — ``canny_edges``, the structure condition (``cv2.Canny``, as ControlNet's annotator).
* :mod:`.first_frame` — ``controlnet_first_frame``: a video's edited first frame at the animator's size.
* :mod:`.config` — ``ControlNetEditorConfig`` (no torch: the CLI reads its defaults for ``--help``).

Nothing is imported here, so ``leo_video.editing.config`` stays cheap for ``--help``.
"""
