"""Import a bundle of bi/superset/ into Superset, overwriting what it holds (run by BI_VENV's
Python; bi/superset_setup.py calls it).

This is the command behind Superset's POST /api/v1/assets/import/ ("managing Superset
assets externally under source control"): unlike `superset import-dashboards`, which keeps
existing databases, datasets and charts as they are, it overwrites every object of the
bundle, so a chart changed in the YAML, or a warehouse moved elsewhere, shows after the
next `make bi`.

    python bi/import_assets.py BUNDLE.zip USERNAME
"""

import sys
import zipfile

from superset.app import create_app


def main(bundle_path: str, username: str) -> None:
    app = create_app()
    with app.app_context():
        from superset import security_manager
        from superset.commands.importers.v1.assets import ImportAssetsCommand
        from superset.commands.importers.v1.utils import get_contents_from_bundle
        from superset.utils.core import override_user

        user = security_manager.find_user(username=username)
        if user is None:
            sys.exit(f"No Superset user {username!r}: create the admin first")
        with zipfile.ZipFile(bundle_path) as bundle:
            contents = get_contents_from_bundle(bundle)
        with override_user(user):
            ImportAssetsCommand(contents).run()


if __name__ == "__main__":
    main(*sys.argv[1:3])
