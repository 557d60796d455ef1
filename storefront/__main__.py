"""`storefront …` (the installed console script) or `python -m storefront …`: `flask --app storefront …`."""

from flask.cli import FlaskGroup


def main():
    """Run the store's Flask commands (db upgrade, worker, reconcile, cleanup-carts, …) on create_app()."""
    from . import create_app

    FlaskGroup(
        create_app=create_app,
        help="The storefront's commands (the same as `flask --app storefront`).",
    ).main()


if __name__ == "__main__":
    main()
