"""HTTP entry points: Blueprints by resource. Views validate, call one service, serialise."""
