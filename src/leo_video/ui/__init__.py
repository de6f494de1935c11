"""The Gradio web UI (optional extra `leo-video[ui]`)."""
