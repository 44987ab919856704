"""Entry point for `flask --app app`: the application object and nothing else."""
from portal import create_app

app = create_app()
