"""The entry points, the top floor: `app` for `flask --app app` and gunicorn, `main` for the
`relance` command, `celery` for `celery -A app:celery worker|beat`."""
from flask.cli import FlaskGroup

from dunning_jobs.tasks import bind
from portal import create_app

app = create_app()
celery = bind(app)


def main() -> None:
    # An app of its own, built after FlaskGroup has read --env-file and .env, as `flask` does.
    FlaskGroup(create_app=create_app).main()
