"""Roles, the admin and the dashboard, in one Superset process (run by BI_VENV's Python;
bi/superset_setup.py calls it after `superset db upgrade`).

    SUPERSET_ADMIN_PASSWORD=... python bi/provision_app.py BUNDLE.zip USERNAME

1. roles and permissions, as `superset init` does;
2. the admin: created, or its password reset to SUPERSET_ADMIN_PASSWORD, as `superset fab
   create-admin` / `reset-password` do (the password comes from the environment, never
   from the command line, which other users of the machine can read);
3. the bundle, with the command behind Superset's POST /api/v1/assets/import/ ("managing
   Superset assets externally under source control"): unlike `superset
   import-dashboards`, which keeps existing databases, datasets and charts as they are,
   it overwrites every object of the bundle, so a chart changed in the YAML, or a
   warehouse moved elsewhere, shows after the next `make bi`.
"""

import os
import sys
import zipfile

from superset.app import create_app


def main(bundle_path: str, username: str) -> None:
    password = os.environ["SUPERSET_ADMIN_PASSWORD"]
    app = create_app()
    with app.app_context():
        from superset import appbuilder, security_manager
        from superset.commands.importers.v1.assets import ImportAssetsCommand
        from superset.commands.importers.v1.utils import get_contents_from_bundle
        from superset.utils.core import override_user
        from superset.utils.decorators import transaction

        @transaction()
        def sync_roles() -> None:
            appbuilder.add_permissions(update_perms=True)
            security_manager.sync_role_definitions()

        sync_roles()
        user = security_manager.find_user(username=username)
        if user is None:
            admin = security_manager.find_role(security_manager.auth_role_admin)
            user = security_manager.add_user(
                username, "Customer", "Marts", f"{username}@localhost", admin, password
            )
            if not user:
                sys.exit(f"Superset could not create the admin user {username!r}")
        else:
            security_manager.reset_password(user.id, password)
        with zipfile.ZipFile(bundle_path) as bundle:
            contents = get_contents_from_bundle(bundle)
        with override_user(user):
            ImportAssetsCommand(contents).run()


if __name__ == "__main__":
    main(*sys.argv[1:3])
