"""The sitecustomize that h3spark puts on ps-lite workers ' PYTHONPATH."""
