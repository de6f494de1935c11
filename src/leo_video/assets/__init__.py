"""Package data: the embedded demo pipeline (``demo_pipeline/``), see :mod:`leo_video.pipelines.demo`."""
