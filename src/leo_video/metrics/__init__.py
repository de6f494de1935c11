"""Evaluation metrics: FVD, KVD, ACD, reconstruction and motion statistics."""
