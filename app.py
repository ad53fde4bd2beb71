"""Chalice app: registers blueprints and event handlers. No logic, no boto3."""
from chalice import Chalice

from chalicelib.api import admin, members, system

app = Chalice(app_name="loyalty")
app.api.binary_types = []

for blueprint in (system.bp, members.bp, admin.bp):
    app.register_blueprint(blueprint)
