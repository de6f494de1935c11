"""The web UI (`leo-video ui`): a Gradio app over plain handler functions.

``handlers`` and ``validation`` need no Gradio; ``app`` imports it (``pip install leo-video[ui]``).
"""
