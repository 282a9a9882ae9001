"""The sitecustomize that h3spark puts first on the PYTHONPATH of ps-lite workers."""
