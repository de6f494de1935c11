"""leo-video: LEO (latent image animator + latent motion diffusion) for human video synthesis.

The public API is imported lazily, so ``import leo_video`` is cheap and the CLI starts fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it. Add new public objects here.
_LAZY_EXPORTS: dict[str, str] = {
    "LeoError": "leo_video.errors",
    # stage 1: LIA animator
    "LatentImageAnimator": "leo_video.models.lia",
    "Appearance": "leo_video.models.lia",
    "load_lia": "leo_video.models.loading",
    "export_lia": "leo_video.models.loading",
    # media
    "VideoReader": "leo_video.media.video",
    "probe_video": "leo_video.media.video",
    "read_video": "leo_video.media.video",
    "write_video": "leo_video.media.video",
    "VideoWriter": "leo_video.media.video",
    "load_image": "leo_video.media.image",
    "save_contact_sheet": "leo_video.media.grid",
    "VideoInfo": "leo_video.media.video",
    "save_image": "leo_video.media.image",
    "to_uint8": "leo_video.media.image",
    "from_uint8": "leo_video.media.image",
    "make_grid": "leo_video.media.grid",
    "contact_sheet": "leo_video.media.grid",
    # data
    "VideoDataset": "leo_video.data.video_dataset",
    "AugmentConfig": "leo_video.data.video_dataset",
    "PrepareConfig": "leo_video.data.prepare",
    "prepare_dataset": "leo_video.data.prepare",
    "render_synthetic_video": "leo_video.data.synthetic",
    "make_synthetic_dataset": "leo_video.data.synthetic",
    "SyntheticHumanConfig": "leo_video.data.synthetic",
    "render_transfer_pair": "leo_video.data.synthetic",
    "make_transfer_pairs": "leo_video.data.synthetic",
    # metrics
    "frechet_distance": "leo_video.metrics.frechet",
    "kernel_distance": "leo_video.metrics.frechet",
    "load_i3d": "leo_video.metrics.i3d",
    "i3d_features": "leo_video.metrics.i3d",
    "average_content_distance": "leo_video.metrics.acd",
    "motion_report": "leo_video.metrics.motion",
    "reconstruction_l1": "leo_video.metrics.recon",
    "transfer_errors": "leo_video.metrics.transfer",
    "video_distances": "leo_video.metrics.evaluate",
    "generated_clip_features": "leo_video.metrics.evaluate",
    "write_report": "leo_video.metrics.report",
    "VideoDistanceOptions": "leo_video.metrics.video_distance",
    "video_distance": "leo_video.metrics.video_distance",
    "ReportOptions": "leo_video.metrics.eval_report",
    "write_eval_report": "leo_video.metrics.eval_report",
    "reconstruction_error": "leo_video.metrics.recon",
    # configs and training
    "resolve_config": "leo_video.config",
    "LIAConfig": "leo_video.configs",
    "LoopConfig": "leo_video.configs",
    "Trainer": "leo_video.train.loop",
    "TrainingTask": "leo_video.train.loop",
    "VGG19": "leo_video.models.vgg",
    "I3DFrameFeatures": "leo_video.models.i3d_frame",
    "PerceptualLoss": "leo_video.train.losses",
    "LMDMConfig": "leo_video.configs",
    "LMDMTask": "leo_video.train.lmdm",
    "AlphaPriorConfig": "leo_video.configs",
    "AlphaPriorTask": "leo_video.train.alpha_prior",
    "LIATrainingTask": "leo_video.train.lia",
    "export_generator": "leo_video.train.lia",
    # stage 2: latent motion diffusion
    "TemporalUNet1D": "leo_video.models.unet1d",
    "StartCodeMLP": "leo_video.models.start_code",
    "MotionDiffusion": "leo_video.diffusion.motion",
    "StartCodePrior": "leo_video.diffusion.start_code",
    "make_scheduler": "leo_video.diffusion.schedulers",
    "MotionCodeWriter": "leo_video.data.motion_codes",
    "MotionCodeStore": "leo_video.data.motion_codes",
    "MotionClipDataset": "leo_video.data.motion_codes",
    # start frames: cDDPM
    "StartFrameUNet": "leo_video.models.start_frame",
    "StartFrameDiffusion": "leo_video.diffusion.start_frame",
    # the whole LEO
    "LEOPipeline": "leo_video.pipelines.leo",
    "GenerationDefaults": "leo_video.pipelines.leo",
    "PipelineSources": "leo_video.pipelines.sources",
    "load_leo_pipeline": "leo_video.pipelines.sources",
    "load_motion": "leo_video.pipelines.sources",
    "GenerateOptions": "leo_video.pipelines.generate",
    "write_generated": "leo_video.pipelines.generate",
    "AnimateOptions": "leo_video.pipelines.animate",
    "write_transfer": "leo_video.pipelines.transfer",
    "EncodeOptions": "leo_video.pipelines.encode",
    "encode_dataset": "leo_video.pipelines.encode",
    # web UI (build_ui needs gradio: leo-video[ui])
    "build_ui": "leo_video.ui.app",
    "AppContext": "leo_video.ui.handlers",
    "UIModels": "leo_video.ui.handlers",
    "UploadLimits": "leo_video.ui.validation",
    # video editing: the ControlNet first-frame editor (optional extra leo-video[edit])
    "ControlNetEditor": "leo_video.editing.controlnet",
    "ControlNetEditorConfig": "leo_video.editing.config",
    "controlnet_first_frame": "leo_video.editing.first_frame",
    "canny_edges": "leo_video.editing.canny",
}

__all__ = ["__version__", *_LAZY_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _LAZY_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'leo_video' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
